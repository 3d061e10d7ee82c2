// Logins in Chromium: `rill console --users-file` with one user per role (hashes made by
// `rill console --hash-password`) on a 1-node rill-broker cluster. Pages redirect to the
// login page; a wrong password is refused on the page; each role logs in (the header names
// it), does what it may and is refused (403) what it may not, and logs out (pages redirect
// to the login page again); a POST without the CSRF token is refused; the audit log names
// who did what; scripts use HTTP Basic with the same roles. The JSON form backs every
// refusal (nothing changed). Screenshots: tests/artifacts/browser/auth-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashPassword, startStack, textMatching } from './lib/console.mjs';
import { RILL_BIN, tempDir } from './lib/rill.mjs';

const USERS = {
  alice: { role: 'admin', password: 'alice-secret-1' },
  oscar: { role: 'operator', password: 'oscar-secret-2' },
  vera: { role: 'viewer', password: 'vera-secret-3' },
};
const basic = (name) => [name, USERS[name].password];

describe('auth', () => {
  let s;
  before(async () => {
    const dir = tempDir('rill-browser-users-');
    const file = path.join(dir, 'users');
    const lines = [];
    for (const [name, u] of Object.entries(USERS)) lines.push(`${name}:${u.role}:${await hashPassword(RILL_BIN, u.password)}`);
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
    s = await startStack('auth', { nodes: 1, consoleArgs: ['--users-file', file] });
  });
  after(async () => { if (s) await s.close(); });

  async function login(name, password = USERS[name].password, next = '/topics') {
    const { page } = s;
    await s.goto(next);
    await page.waitForURL(/\/login\?next=/);
    assert.equal(await page.getAttribute('body', 'data-page'), 'login');
    await page.fill('#login-form input[name=username]', name);
    await page.fill('#login-form input[name=password]', password);
    const [resp] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'), page.click('#login-submit')]);
    return resp;
  }

  async function logout() {
    const { page } = s;
    await Promise.all([page.waitForURL(/\/login/), page.click('#logout-submit')]);
    assert.equal(await page.locator('#current-user').count(), 0);
    // The session is gone: pages send us back to the login page.
    await s.goto('/groups');
    await page.waitForURL(/\/login\?next=%2Fgroups/);
  }

  async function createThroughForm(name) {
    const { page } = s;
    await s.goto('/topics');
    await page.fill('#create-topic-form input[name=name]', name);
    const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#create-topic-submit')]);
    await page.waitForLoadState();
    return resp.status();
  }

  async function deleteThroughForm(name) {
    const { page } = s;
    await s.goto(`/topics/${name}`);
    await page.fill('#delete-topic-form input[name=confirm]', name);
    const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#delete-topic-submit')]);
    await page.waitForLoadState();
    return resp.status();
  }

  const topicStatus = async (name) => (await s.json(`/topics/${name}`, { auth: basic('vera') })).status;

  it('sends visitors to the login page and refuses a wrong password', async () => {
    const { page } = s;
    assert.equal((await s.json('/topics')).status, 401, 'JSON without credentials');
    assert.equal((await s.json('/topics', { auth: ['alice', 'wrong'] })).status, 401);
    await s.step('redirected-to-login', async () => {
      await s.goto('/topics');
      await page.waitForURL(/\/login\?next=%2Ftopics$/);
      assert.equal(await page.locator('#nav-topics').count(), 1);
      assert.equal(await page.locator('#current-user').count(), 0);
    });
    await s.step('wrong-password', async () => {
      const resp = await login('alice', 'not-her-password');
      assert.equal(resp.status(), 401);
      await textMatching(page.locator('#login-error'), /\S/);
      assert.equal(await page.locator('#current-user').count(), 0);
    });
    await s.step('unknown-user', async () => {
      const resp = await login('mallory', 'whatever');
      assert.equal(resp.status(), 401);
      await page.locator('#login-error').waitFor();
    });
  });

  it('admin logs in, creates and deletes a topic, and logs out', async () => {
    const { page } = s;
    await s.step('admin-logged-in', async () => {
      const resp = await login('alice');
      assert.equal(resp.status(), 303);
      await page.waitForURL(/\/topics$/);
      await textMatching(page.locator('#current-user'), /^alice \(admin\)$/);
    });
    await s.step('admin-created', async () => {
      assert.equal(await createThroughForm('by-admin'), 303);
      await page.waitForURL(/\/topics\/by-admin\?/);
      await page.locator('#notice').waitFor();
    });
    assert.equal(await topicStatus('by-admin'), 200);
    await s.step('admin-deleted', async () => {
      assert.equal(await deleteThroughForm('by-admin'), 303);
      await page.waitForURL(/\/topics(\?|$)/);
      await textMatching(page.locator('#notice'), /by-admin/);
    });
    assert.equal(await topicStatus('by-admin'), 404);
    await s.step('admin-csrf-refused', async () => {
      // The session cookie alone is not enough: a POST without the form's token is 403.
      const status = await page.evaluate(async () => (await fetch('/topics', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'name=no-token&partitions=1&replication_factor=1',
      })).status);
      assert.equal(status, 403);
    });
    assert.equal(await topicStatus('no-token'), 404, 'nothing created without the token');
    await s.step('admin-logged-out', logout);
  });

  it('operator logs in, may create but not delete, and logs out', async () => {
    const { page } = s;
    await s.step('operator-logged-in', async () => {
      assert.equal((await login('oscar')).status(), 303);
      await textMatching(page.locator('#current-user'), /^oscar \(operator\)$/);
    });
    await s.step('operator-created', async () => {
      assert.equal(await createThroughForm('by-operator'), 303);
      await page.waitForURL(/\/topics\/by-operator\?/);
    });
    await s.step('operator-config-set', async () => {
      await page.fill('#alter-config-form input[name=key]', 'retention.ms');
      await page.fill('#alter-config-form input[name=value]', '3600000');
      await Promise.all([page.waitForURL(/notice=/), page.click('#alter-config-set')]);
      assert.equal((await page.locator('#configs-table tr[data-config="retention.ms"] .config-value').textContent()).trim(), '3600000');
    });
    await s.step('operator-delete-refused', async () => {
      assert.equal(await deleteThroughForm('by-operator'), 403);
      await textMatching(page.locator('#error-message'), /operator/);
      await textMatching(page.locator('#current-user'), /^oscar \(operator\)$/);
    });
    assert.equal(await topicStatus('by-operator'), 200, 'still there');
    await s.step('operator-logged-out', logout);
  });

  it('viewer logs in, reads pages, is refused every change, and logs out', async () => {
    const { page } = s;
    await s.step('viewer-logged-in', async () => {
      assert.equal((await login('vera', undefined, '/topics/by-operator')).status(), 303);
      await page.waitForURL(/\/topics\/by-operator$/);
      await textMatching(page.locator('#current-user'), /^vera \(viewer\)$/);
      assert.equal(await page.textContent('#topic-name'), 'by-operator');
    });
    await s.step('viewer-config-refused', async () => {
      await page.fill('#alter-config-form input[name=key]', 'retention.ms');
      await page.fill('#alter-config-form input[name=value]', '60000');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#alter-config-set')]);
      assert.equal(resp.status(), 403);
      await textMatching(page.locator('#error-message'), /viewer/);
    });
    await s.step('viewer-create-refused', async () => {
      assert.equal(await createThroughForm('by-viewer'), 403);
      await textMatching(page.locator('#error-message'), /viewer/);
    });
    await s.step('viewer-produce-refused', async () => {
      await s.goto('/topics/by-operator');
      await page.fill('#produce-form textarea[name=value]', 'hello');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#produce-submit')]);
      assert.equal(resp.status(), 403);
    });
    await s.step('viewer-delete-refused', async () => {
      assert.equal(await deleteThroughForm('by-operator'), 403);
      await page.locator('#error-message').waitFor();
    });
    assert.equal(await topicStatus('by-viewer'), 404);
    assert.equal(await topicStatus('by-operator'), 200);
    const t = (await s.json('/topics/by-operator', { auth: basic('vera') })).body;
    assert.equal(t.configs.find((c) => c.name === 'retention.ms').value, '3600000', 'config unchanged');
    assert.equal(t.topic.partitions[0].latest, 0, 'nothing produced');
    await s.step('viewer-logged-out', logout);
  });

  it('scripts use HTTP Basic with the same roles; the audit log names each user', async () => {
    const { page } = s;
    const v = await s.json('/topics', { method: 'POST', body: { name: 'basic-viewer', partitions: 1 }, auth: basic('vera') });
    assert.equal(v.status, 403, JSON.stringify(v.body));
    const o = await s.json('/topics/by-operator/delete', { method: 'POST', body: { confirm: 'by-operator' }, auth: basic('oscar') });
    assert.equal(o.status, 403, JSON.stringify(o.body));
    const a = await s.json('/topics/by-operator/delete', { method: 'POST', body: { confirm: 'by-operator' }, auth: basic('alice') });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(await topicStatus('by-operator'), 404);

    await s.step('audit', async () => {
      assert.equal((await login('alice', undefined, '/audit')).status(), 303);
      await page.waitForURL(/\/audit$/);
      const text = await page.locator('#audit-table').textContent();
      for (const name of ['alice', 'oscar']) assert.match(text, new RegExp(name), `audit names ${name}`);
      assert.ok(await page.locator('#audit-table tr[data-action]').count() >= 4);
    });
    const audit = (await s.json('/audit', { auth: basic('alice') })).body.entries;
    const users = new Set(audit.map((e) => e.user));
    assert.ok(users.has('alice') && users.has('oscar'), JSON.stringify(audit.slice(0, 5)));
    await s.step('audit-logged-out', logout);
  });
});
