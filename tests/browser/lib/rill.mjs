// Real Rill processes for browser tests: brokers and the console from target/debug, on
// 127.0.0.1 with ports the processes pick themselves (port 0), each ready once it prints its
// ready line (bounded wait). Logs go to tests/artifacts/browser/<name>.log. Every process is
// killed when the test process exits.
//
//   import { startCluster, startConsole } from './lib/rill.mjs';
//   const cluster = await startCluster(3);          // or startCluster(1)
//   const consoleApp = await startConsole({ bootstrap: cluster.bootstrap });
//   ... page.goto(consoleApp.url) ...
//   await consoleApp.stop(); await cluster.stop();

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ARTIFACTS, REPO_ROOT } from './browser.mjs';

const TARGET = process.env.CARGO_TARGET_DIR
  ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
  : path.join(REPO_ROOT, 'target');
export const BROKER_BIN = process.env.RILL_BROKER_BIN || path.join(TARGET, 'debug', 'rill-broker');
export const RILL_BIN = process.env.RILL_BIN || path.join(TARGET, 'debug', 'rill');
const READY_TIMEOUT_MS = 60_000;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
// Interrupted (Ctrl-C, the runner's cancellation): 'exit' handlers do not run on a signal
// by default, so leave through process.exit to take the processes down with us.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[signal]));
}

/** Whether `port` on 127.0.0.1 can be bound right now. */
export function bindable(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on 127.0.0.1 for addresses other processes must know in advance, picked
 * below the kernel's ephemeral range: it is bound later by a broker, and an ephemeral port
 * can be taken meanwhile by any outgoing connection. Bounded tries, then the kernel's choice.
 */
export async function freePort() {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch { /* not Linux: the default range */ }
  const floor = Math.min(10000, low - 1000);
  for (let i = 0; i < 200; i++) {
    const port = floor + Math.floor(Math.random() * (low - floor));
    if (await bindable(port)) return port;
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh temporary directory. */
export function tempDir(prefix = 'rill-browser-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * Spawns `bin args`, logs its output to tests/artifacts/browser/<name>.log and resolves with
 * the first stdout line matching `readyRe` (its match) once printed, or rejects when the
 * process exits first or READY_TIMEOUT_MS passes.
 */
export function spawnUntilReady(name, bin, args, readyRe, options = {}) {
  if (!existsSync(bin)) {
    return Promise.reject(new Error(`${bin} not found: cargo build -p rill-broker -p rill-admin --bins`));
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = createWriteStream(path.join(ARTIFACTS, `${name}.log`), { flags: 'a' });
  log.write(`===== ${bin} ${args.join(' ')}\n`);
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RILL_LOG: 'info', NO_COLOR: '1', ...process.env, ...(options.env || {}) },
    cwd: options.cwd,
  });
  running.add(child);
  child.stderr.pipe(log, { end: false });
  const stop = async (signal = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop('SIGKILL');
      reject(new Error(`${name} printed no ready line within ${READY_TIMEOUT_MS} ms (log: ${name}.log)`));
    }, READY_TIMEOUT_MS);
    let ready = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      log.write(`${line}\n`);
      const m = !ready && line.match(readyRe);
      if (m) {
        ready = true;
        clearTimeout(timer);
        resolve({ match: m, child, stop });
      }
    });
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready (log: ${name}.log)`));
      }
    });
  });
}

const BROKER_READY = /^rill-broker ready: node=(\d+) kafka=(\S+) http=(\S+)/;

/**
 * Starts `n` combined broker+controller nodes (one cluster id, one voter list), like
 * `rill dev`, on ports they pick. Resolves once every node is ready. Logs:
 * <logPrefix>broker-N.log.
 */
export async function startCluster(n = 1, { overrides = {}, logPrefix = '' } = {}) {
  const dir = tempDir('rill-browser-cluster-');
  const controllerPorts = [];
  for (let i = 0; i < n; i++) controllerPorts.push(await freePort());
  const voters = controllerPorts.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',');
  const clusterId = `rillbrowser${Math.random().toString(36).slice(2, 13)}`;
  const starts = controllerPorts.map((port, i) => {
    const props = {
      'node.id': `${i + 1}`,
      'cluster.id': clusterId,
      'controller.quorum.voters': voters,
      listeners: `PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:${port}`,
      'http.listener': '127.0.0.1:0',
      'log.dirs': path.join(dir, `node-${i + 1}`),
      'group.initial.rebalance.delay.ms': '0',
      ...overrides,
    };
    const args = Object.entries(props).flatMap(([k, v]) => ['--override', `${k}=${v}`]);
    return spawnUntilReady(`${logPrefix}broker-${i + 1}`, BROKER_BIN, args, BROKER_READY);
  });
  const results = await Promise.allSettled(starts);
  const nodes = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const failed = results.find((r) => r.status === 'rejected');
  const stop = async () => { await Promise.all(nodes.map((node) => node.stop())); };
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return {
    nodes: nodes.map(({ match, stop: stopNode, child }) => ({
      id: Number(match[1]), kafka: match[2], http: match[3], pid: child.pid, stop: stopNode,
    })),
    bootstrap: nodes.map(({ match }) => match[2]).join(','),
    dataDir: dir,
    stop,
  };
}

const CONSOLE_READY = /^rill console ready: (\S+)/;

/**
 * Starts `rill console --bootstrap <bootstrap> --listen 127.0.0.1:0` with an SQLite store in
 * a fresh directory (or `databaseUrl`); resolves with its URL once it prints its ready line.
 */
export async function startConsole({ bootstrap, databaseUrl, args = [], logPrefix = '' } = {}) {
  const dir = tempDir('rill-browser-console-');
  const all = ['console', '--bootstrap', bootstrap, '--listen', '127.0.0.1:0',
    '--database-url', databaseUrl || `sqlite://${path.join(dir, 'console.db')}`, ...args];
  const { match, stop, child } = await spawnUntilReady(`${logPrefix}console`, RILL_BIN, all, CONSOLE_READY, { cwd: dir });
  return { url: match[1].replace(/\/$/, ''), pid: child.pid, stop };
}
