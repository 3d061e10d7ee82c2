// The console against a secured 3-node cluster (`rill dev --secure --nodes 3`: clients over
// SASL_SSL with SCRAM, replication and the metadata quorum over mutual TLS, ACLs enforced),
// managing SCRAM users and ACLs in Chromium. What the pages change is checked against the
// brokers themselves with kcat (librdkafka) logging in as the user the console created:
// refused before an ALLOW, accepted after it, refused again under a DENY (deny wins),
// accepted once the DENY is deleted, and refused with the old password after a rotation.
// A change is committed by the quorum before the page answers, but each broker applies it
// on its own: kcat expectations are polled (bounded) until they hold, and the records that
// refusal probes may write while a broker catches up are named probe-* and left out of the
// final count.
// Screenshots: tests/artifacts/browser/security-NN-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, launch, screenshot } from './lib/browser.mjs';
import { WAIT_MS, cells, textMatching, waitFor } from './lib/console.mjs';
import { RILL_BIN, bindable, spawnUntilReady, tempDir } from './lib/rill.mjs';

const NAME = 'security';
const NODES = 3;
const ALICE_PW = 'alice-first-password';
const ALICE_PW2 = 'alice-second-password';

/**
 * Base ports for `rill dev` (it takes runs of consecutive ports: Kafka, INTERNAL at
 * Kafka + 1000, controllers, HTTP, the console), every one free now; bounded tries.
 */
async function devPorts() {
  for (let attempt = 0; attempt < 100; attempt++) {
    // Below Linux's ephemeral range (32768+), so outgoing connections do not take them.
    const base = 10000 + Math.floor(Math.random() * 20000);
    const kafka = base;
    const controller = base + 10;
    const http = base + 20;
    const consolePort = base + 30;
    const wanted = [];
    for (let i = 0; i < NODES; i++) wanted.push(kafka + i, kafka + 1000 + i, controller + i, http + i);
    wanted.push(consolePort);
    let free = true;
    for (const p of wanted) {
      if (!(await bindable(p))) { free = false; break; }
    }
    if (free) return { kafka, controller, http, consolePort };
  }
  throw new Error('no free run of ports for rill dev after 100 tries');
}

describe('security pages on a secured 3-node cluster', () => {
  let dev;
  let browser;
  let page;
  let url;
  let bootstrap;
  let ca;
  let adminPw;
  let n = 0;

  async function step(label, fn) {
    try {
      const v = await fn();
      n += 1;
      await screenshot(page, `${NAME}-${String(n).padStart(2, '0')}-${label}`);
      return v;
    } catch (e) {
      n += 1;
      await screenshot(page, `${NAME}-${String(n).padStart(2, '0')}-${label}-FAILED`).catch(() => {});
      throw e;
    }
  }

  /** kcat as `user` (SCRAM-SHA-512 over SASL_SSL, trusting the dev CA); bounded. */
  function kcat(user, password, args, input) {
    const r = spawnSync('kcat', [
      '-b', bootstrap,
      '-X', 'security.protocol=SASL_SSL', '-X', 'sasl.mechanisms=SCRAM-SHA-512',
      '-X', `sasl.username=${user}`, '-X', `sasl.password=${password}`,
      '-X', `ssl.ca.location=${ca}`, '-X', 'message.timeout.ms=10000',
      ...args,
    ], { input, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout || '', err: r.stderr || '' };
  }
  const produceAs = (user, password, value) => kcat(user, password, ['-t', 'payments', '-P'], `${value}\n`);
  let probes = 0;
  /** Polls until a produce as `user` is refused with an error matching `re`. */
  const refused = (what, user, password, re) => waitFor(what, () => {
    probes += 1;
    const r = produceAs(user, password, `probe-${probes}`);
    return r.code !== 0 && re.test(r.err) ? r : null;
  }, { interval: 250 });
  /** Polls until `value` is produced as `user` (a refused attempt writes nothing). */
  const accepted = (what, user, password, value) => waitFor(what, () => {
    const r = produceAs(user, password, value);
    return r.code === 0 ? r : null;
  }, { interval: 250 });

  async function submit(formSelector, buttonSelector) {
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST', { timeout: WAIT_MS }),
      page.click(`${formSelector} ${buttonSelector}`),
    ]);
    await page.waitForLoadState();
    return resp;
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of readdirSync(ARTIFACTS)) {
      if (f.startsWith(`${NAME}-`) && f.endsWith('.png')) rmSync(path.join(ARTIFACTS, f));
    }
    const dir = tempDir('rill-browser-secure-');
    const ports = await devPorts();
    dev = await spawnUntilReady(`${NAME}-dev`, RILL_BIN, [
      'dev', '--secure', '--nodes', String(NODES), '--data-dir', path.join(dir, 'data'),
      '--port', String(ports.kafka), '--controller-port', String(ports.controller),
      '--http-port', String(ports.http), '--console-port', String(ports.consolePort),
    ], /^Ctrl-C stops the cluster/);
    url = `http://127.0.0.1:${ports.consolePort}`;
    bootstrap = Array.from({ length: NODES }, (_, i) => `127.0.0.1:${ports.kafka + i}`).join(',');
    ca = path.join(dir, 'data', 'secure', 'ca.pem');
    adminPw = readFileSync(path.join(dir, 'data', 'secure', 'admin.password'), 'utf8').trim();
    browser = await launch();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    page = await context.newPage();
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (dev) await dev.stop();
  });

  it('creates a topic replicated over TLS, a SCRAM user, ACLs, and enforces them', async () => {
    await step('users-page', async () => {
      await page.goto(`${url}/users`);
      assert.equal(await page.getAttribute('body', 'data-page'), 'users');
      const admin = page.locator('#users-table tr[data-user="admin"]');
      await admin.waitFor();
      assert.equal(await admin.locator('.credential').count(), 2, 'admin has SCRAM-SHA-256 and -512');
    });
    await step('topic-created', async () => {
      await page.goto(`${url}/topics`);
      const form = page.locator('#create-topic-form');
      await form.locator('input[name=name]').fill('payments');
      await form.locator('input[name=partitions]').fill('2');
      await form.locator('input[name=replication_factor]').fill('3');
      await Promise.all([page.waitForURL(/\/topics\/payments(\?|$)/), page.click('#create-topic-submit')]);
      await textMatching(page.locator('#notice'), /payments/);
    });

    await step('user-mismatch', async () => {
      await page.goto(`${url}/users`);
      await page.fill('#scram-user-form input[name=user]', 'alice');
      await page.selectOption('#scram-user-form select[name=mechanism]', 'SCRAM-SHA-512');
      await page.fill('#scram-user-form input[name=password]', ALICE_PW);
      await page.fill('#scram-user-form input[name=password_confirm]', 'something else');
      const resp = await submit('#scram-user-form', '#scram-user-submit');
      assert.equal(resp.status(), 400);
      await textMatching(page.locator('#scram-user-password_confirm-error'), /differ/);
      assert.equal(await page.inputValue('#scram-user-form input[name=password]'), '', 'passwords are never echoed back');
    });
    await step('user-created', async () => {
      await page.fill('#scram-user-form input[name=user]', 'alice');
      await page.selectOption('#scram-user-form select[name=mechanism]', 'SCRAM-SHA-512');
      await page.fill('#scram-user-form input[name=password]', ALICE_PW);
      await page.fill('#scram-user-form input[name=password_confirm]', ALICE_PW);
      await Promise.all([page.waitForURL(/\/users\?notice=/), page.click('#scram-user-submit')]);
      await textMatching(page.locator('#notice'), /alice/);
      const row = page.locator('#users-table tr[data-user="alice"] .credential');
      assert.equal(await row.getAttribute('data-mechanism'), 'SCRAM-SHA-512');
    });

    // Logged in but not authorized: deny by default.
    await refused('alice to log in but not be allowed to write', 'alice', ALICE_PW, /[Aa]uthorization/);

    await step('acl-bad-operation', async () => {
      await page.goto(`${url}/acls`);
      assert.equal(await page.getAttribute('body', 'data-page'), 'acls');
      assert.equal(await page.locator('#acls-error').count(), 0, 'the cluster has an authorizer');
      const form = page.locator('#create-acl-form');
      await form.locator('input[name=principal]').fill('User:alice');
      await form.locator('select[name=operation]').selectOption('idempotent_write');
      await form.locator('select[name=resource_type]').selectOption('topic');
      await form.locator('input[name=resource_name]').fill('payments');
      const resp = await submit('#create-acl-form', '#create-acl-submit');
      assert.equal(resp.status(), 400);
      await textMatching(page.locator('#create-acl-operation-error'), /does not apply to TOPIC/);
    });
    await step('acl-allow-write', async () => {
      const form = page.locator('#create-acl-form');
      await form.locator('input[name=principal]').fill('User:alice');
      await form.locator('select[name=permission]').selectOption('allow');
      await form.locator('select[name=operation]').selectOption('write');
      await form.locator('select[name=resource_type]').selectOption('topic');
      await form.locator('input[name=resource_name]').fill('payments');
      await Promise.all([page.waitForURL(/\/acls\?/), page.click('#create-acl-submit')]);
      await textMatching(page.locator('#notice'), /ACL added/);
      const row = page.locator('#acls-table tr[data-principal="User:alice"][data-operation="WRITE"]');
      assert.deepEqual((await cells(row)).slice(0, 7), ['User:alice', 'ALLOW', 'WRITE', 'TOPIC', 'payments', 'LITERAL', '*']);
    });
    await step('acl-check', async () => {
      await page.fill('#acl-check-form input[name=check_principal]', 'User:alice');
      await page.selectOption('#acl-check-form select[name=check_resource_type]', 'topic');
      await page.fill('#acl-check-form input[name=check_resource]', 'payments');
      await Promise.all([page.waitForURL(/check_principal=/), page.click('#acl-check-submit')]);
      const verdict = (op) => page.getAttribute(`#acl-check-result tr[data-operation="${op}"]`, 'data-verdict');
      assert.equal(await verdict('WRITE'), 'allowed');
      assert.equal(await verdict('DESCRIBE'), 'allowed', 'WRITE implies DESCRIBE');
      assert.equal(await verdict('READ'), 'denied');
      await textMatching(page.locator('#acl-check-result tr[data-operation="WRITE"]'), /allowed by ALLOW User:alice WRITE/);
    });

    await accepted('alice to write under the ALLOW', 'alice', ALICE_PW, 'first');

    await step('acl-deny', async () => {
      await page.goto(`${url}/acls`);
      const form = page.locator('#create-acl-form');
      await form.locator('input[name=principal]').fill('User:alice');
      await form.locator('select[name=permission]').selectOption('deny');
      await form.locator('select[name=operation]').selectOption('all');
      await form.locator('select[name=resource_type]').selectOption('topic');
      await form.locator('input[name=resource_name]').fill('pay');
      await form.locator('select[name=pattern_type]').selectOption('prefixed');
      await Promise.all([page.waitForURL(/\/acls\?/), page.click('#create-acl-submit')]);
      await page.locator('#acls-table tr[data-permission="DENY"]').waitFor();
    });
    await refused('the DENY to win over the ALLOW', 'alice', ALICE_PW, /[Aa]uthorization/);

    await step('acl-delete-confirm', async () => {
      await page.goto(`${url}/acls?permission=deny`);
      const row = page.locator('#acls-table tr[data-permission="DENY"]');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), row.locator('.delete-acl-submit').click()]);
      await page.locator('#delete-acl-confirm').waitFor();
      await textMatching(page.locator('#delete-acl-confirm'), /DENY User:alice ALL/);
    });
    await step('acl-deleted', async () => {
      await Promise.all([page.waitForURL(/\/acls\?notice=/), page.click('#delete-acl-confirm-submit')]);
      await textMatching(page.locator('#notice'), /ACL deleted/);
      assert.equal(await page.locator('#acls-table tr[data-permission="DENY"]').count(), 0);
      assert.equal(await page.locator('#acls-table tr[data-principal="User:alice"]').count(), 1);
    });
    await accepted('the ALLOW to apply again', 'alice', ALICE_PW, 'second');

    await step('user-rotated', async () => {
      await page.goto(`${url}/users`);
      await page.fill('#scram-user-form input[name=user]', 'alice');
      await page.selectOption('#scram-user-form select[name=mechanism]', 'SCRAM-SHA-512');
      await page.fill('#scram-user-form input[name=password]', ALICE_PW2);
      await page.fill('#scram-user-form input[name=password_confirm]', ALICE_PW2);
      await Promise.all([page.waitForURL(/\/users\?notice=/), page.click('#scram-user-submit')]);
      await textMatching(page.locator('#notice'), /password changed/);
    });
    await refused('the old password to stop logging in', 'alice', ALICE_PW, /[Aa]uthentication/);
    await accepted('the new password to log in', 'alice', ALICE_PW2, 'third');

    // Everything alice wrote, read back by the admin (replicated over TLS, RF 3).
    const read = kcat('admin', adminPw, ['-t', 'payments', '-C', '-o', 'beginning', '-e', '-q']);
    assert.equal(read.code, 0, read.err);
    const written = read.out.trim().split('\n').filter((v) => !v.startsWith('probe-'));
    assert.deepEqual(written.sort(), ['first', 'second', 'third']);

    await step('user-deleted', async () => {
      await page.goto(`${url}/users`);
      const form = page.locator('#users-table tr[data-user="alice"] form.delete-user-form');
      await form.locator('input[name=confirm]').fill('alice');
      await Promise.all([page.waitForURL(/\/users\?notice=/), form.locator('.delete-user-submit').click()]);
      await textMatching(page.locator('#notice'), /alice deleted/);
      assert.equal(await page.locator('#users-table tr[data-user="alice"]').count(), 0);
    });
    await refused('a deleted user to be refused', 'alice', ALICE_PW2, /[Aa]uthentication/);

    await step('audit', async () => {
      await page.goto(`${url}/audit`);
      for (const action of ['create-scram-user', 'rotate-scram-user', 'delete-scram-user', 'create-acl', 'delete-acl']) {
        assert.ok(await page.locator(`#audit-table tr[data-action="${action}"]`).count() >= 1, action);
      }
      const text = await page.textContent('#audit-table');
      assert.ok(!text.includes(ALICE_PW) && !text.includes(ALICE_PW2), 'no password in the audit log');
    });
  });
});
