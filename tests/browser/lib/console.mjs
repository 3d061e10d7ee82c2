// What every console feature test needs on top of lib/rill.mjs and lib/browser.mjs: a
// stack (brokers + `rill console` + Chromium) torn down in one call, numbered screenshots
// for every step (and one more, suffixed FAILED, when a step throws), the console's JSON
// form for cross-checks, and bounded polling for conditions the page cannot auto-wait on.
//
//   const s = await startStack('topics', { nodes: 1 });
//   try {
//     await s.step('create-form-filled', async () => { ... });   // screenshot after it
//     const { status, body } = await s.json('/topics/orders');
//   } finally { await s.close(); }

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ARTIFACTS, launch, screenshot } from './browser.mjs';
import { startCluster, startConsole } from './rill.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

// The console collects every 500 ms in tests (default 10 s), so pages catch up quickly;
// after a change a handler itself waits for a fresh collection before answering.
export const COLLECT_INTERVAL_MS = 500;
// Bound of every wait in these tests: generous for a loaded 2-core machine, still finite.
export const WAIT_MS = 30_000;

/**
 * Polls `fn` (sync or async) until it returns a truthy value, which is returned; throws
 * naming `what` (and the last value or error seen) after `timeout` ms.
 */
export async function waitFor(what, fn, { timeout = WAIT_MS, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Waits until `locator`'s text matches `re` (auto-retrying), returns the text. */
export async function textMatching(locator, re, timeout = WAIT_MS) {
  let text = '';
  await waitFor(`${locator} to read ${re}`, async () => {
    text = (await locator.textContent({ timeout: 1000 })) ?? '';
    return re.test(text);
  }, { timeout });
  return text;
}

/** Text of each cell of `row` (a locator of one tr). */
export async function cells(row) {
  return (await row.locator('td').allTextContents()).map((t) => t.trim());
}

/**
 * Starts `nodes` brokers, `rill console` on them (extra `consoleArgs`) and Chromium.
 * `name` prefixes screenshots (tests/artifacts/browser/<name>-NN-<step>.png) and the
 * processes' logs (<name>-broker-N.log, <name>-console.log).
 */
export async function startStack(name, { nodes = 1, consoleArgs = [], brokerOverrides = {} } = {}) {
  // Screenshots of an earlier run of this file would mix with this run's.
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of readdirSync(ARTIFACTS)) {
    if (f.startsWith(`${name}-`) && f.endsWith('.png')) rmSync(path.join(ARTIFACTS, f));
  }
  const cluster = await startCluster(nodes, { overrides: brokerOverrides, logPrefix: `${name}-` });
  let app;
  let browser;
  try {
    app = await startConsole({
      bootstrap: cluster.bootstrap,
      args: ['--collect-interval-ms', String(COLLECT_INTERVAL_MS), ...consoleArgs],
      logPrefix: `${name}-`,
    });
    browser = await launch();
  } catch (e) {
    if (browser) await browser.close();
    if (app) await app.stop();
    await cluster.stop();
    throw e;
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  const page = await context.newPage();
  let n = 0;
  const stack = {
    cluster,
    app,
    browser,
    context,
    page,
    url: app.url,
    /** Screenshot of `p` (default: the page) as <name>-NN-<label>.png. */
    async shot(label, p = page) {
      n += 1;
      return screenshot(p, `${name}-${String(n).padStart(2, '0')}-${label}`);
    },
    /** Runs `fn`, then screenshots the page; on failure screenshots <label>-FAILED. */
    async step(label, fn) {
      try {
        const v = await fn();
        await stack.shot(label);
        return v;
      } catch (e) {
        await stack.shot(`${label}-FAILED`).catch(() => {});
        throw e;
      }
    },
    /** GET (or `method` with a JSON `body`) `p` with Accept: application/json. */
    async json(p, { method = 'GET', body, auth, headers = {} } = {}) {
      const h = { Accept: 'application/json', ...headers };
      if (body !== undefined) h['Content-Type'] = 'application/json';
      if (auth) h.Authorization = `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`).toString('base64')}`;
      const r = await fetch(`${app.url}${p}`, {
        method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual',
      });
      const text = await r.text();
      let parsed;
      try { parsed = JSON.parse(text); } catch { parsed = text; }
      return { status: r.status, body: parsed };
    },
    /** Navigates to `p` (relative to the console) and returns the response. */
    async goto(p) {
      return page.goto(`${app.url}${p}`);
    },
    async close() {
      await browser.close().catch(() => {});
      await app.stop();
      await cluster.stop();
    },
  };
  return stack;
}

/** `rill console --hash-password` for `password` (the users file's third field). */
export async function hashPassword(rillBin, password) {
  const child = spawn(rillBin, ['console', '--hash-password'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  child.stdin.end(`${password}\n`);
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`rill console --hash-password exited ${code}: ${err}`);
  return out.trim();
}

// Python children still running when the test process exits are killed with it.
const pythons = new Set();
process.on('exit', () => { for (const child of pythons) child.kill('SIGKILL'); });

/**
 * lib/group.py as a child process (kafka-python): `member` joins a group, commits offsets
 * and stays a member until `leave()`; `offsets` prints the committed offsets as JSON.
 * Output goes to tests/artifacts/browser/<logName>.log.
 */
export function python(logName, args) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const log = createWriteStream(path.join(ARTIFACTS, `${logName}.log`), { flags: 'a' });
  const child = spawn(process.env.PYTHON || 'python3', [path.join(here, 'group.py'), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr.pipe(log, { end: false });
  const lines = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    log.write(`${line}\n`);
    lines.push(line);
    for (const w of waiters.splice(0)) w();
  });
  pythons.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { pythons.delete(child); resolve(code ?? signal); }));
  return {
    child,
    lines,
    exited,
    /** Resolves with the first output line matching `re` (bounded; rejects on exit). */
    async line(re, timeout = WAIT_MS) {
      let done = false;
      const found = () => lines.find((l) => re.test(l));
      const result = await Promise.race([
        (async () => {
          while (!done && !found()) await new Promise((r) => waiters.push(r));
          return found();
        })(),
        exited.then((code) => { throw new Error(`group.py ${args[0]} exited (${code}) before printing ${re}; see ${logName}.log`); }),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`group.py printed no ${re} within ${timeout} ms`)), timeout).unref()),
      ]).finally(() => { done = true; for (const w of waiters.splice(0)) w(); });
      return result;
    },
    /** Closes stdin (the member leaves the group and exits); resolves with the exit code. */
    async leave() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
