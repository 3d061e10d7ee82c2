// The quotas page in Chromium against a 1-node rill-broker and `rill console`: a user with
// the default client id gets quotas through the form and the table shows them (the default
// as "(default)", unset values blank); a value the broker refuses is shown beside its field
// in the broker's words and changes nothing; the entity's quotas are removed only once it
// is typed again (the button disabled until then); the audit log has both changes. Each
// outcome is cross-checked with the console's JSON form and with `rill quotas --describe`.
// Screenshots: tests/artifacts/browser/quotas-NN-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cells, startStack, textMatching, waitFor } from './lib/console.mjs';
import { RILL_BIN } from './lib/rill.mjs';

const ENTITY = 'user=alice,client-id=<default>';

/** `rill quotas --describe --output json`: the `quotas` array. */
function cliQuotas(bootstrap) {
  const out = execFileSync(RILL_BIN, ['quotas', '--bootstrap-server', bootstrap, '--describe', '--output', 'json'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, RILL_LOG: 'warn' },
  });
  return JSON.parse(out).quotas;
}

describe('quotas', () => {
  let s;
  before(async () => {
    s = await startStack('quotas', { nodes: 1 });
  });
  after(async () => {
    if (s) await s.close();
  });

  it('sets quotas through the form, shows them, and removes them after a typed confirmation', async () => {
    const { page } = s;
    const row = page.locator(`#quotas-table tr[data-entity="${ENTITY}"]`);

    await s.step('empty', async () => {
      await s.goto('/quotas');
      assert.equal(await page.getAttribute('body', 'data-page'), 'quotas');
      await page.locator('#nav-quotas.active').waitFor();
      await textMatching(page.locator('#quotas-none'), /No client quotas/);
    });

    await s.step('set', async () => {
      await page.selectOption('#set-quotas-form select[name=user_kind]', 'name');
      await page.fill('#set-quotas-form input[name=user]', 'alice');
      await page.selectOption('#set-quotas-form select[name=client_kind]', 'default');
      await page.fill('#set-quotas-form input[name=producer_byte_rate]', '1048576');
      await page.fill('#set-quotas-form input[name=request_percentage]', '25');
      await Promise.all([page.waitForURL(/\/quotas\?notice=/), page.click('#set-quotas-submit')]);
      await textMatching(page.locator('#notice'), /Quotas of user=alice,client-id=<default> set/);
    });

    await s.step('listed', async () => {
      await row.waitFor();
      const c = await cells(row);
      assert.equal(c[0], 'alice');
      assert.equal(c[1], '(default)');
      assert.equal(await row.locator('td.client-id .default').count(), 1, 'the default entity is marked');
      assert.deepEqual(c.slice(2, 6), ['1048576', '', '25', ''], 'unset values are blank');
    });
    const j = await s.json('/quotas');
    assert.equal(j.status, 200);
    const listed = j.body.quotas.find((q) => q.entity === ENTITY);
    assert.ok(listed, JSON.stringify(j.body));
    assert.deepEqual(listed.values, [1048576, null, 25, null]);
    assert.deepEqual(cliQuotas(s.cluster.bootstrap), [
      { user: 'alice', client_id: '<default>', values: { producer_byte_rate: 1048576, request_percentage: 25 } },
    ]);

    await s.step('refused', async () => {
      // Bytes per second are whole: the broker refuses 1.5 in its own words, shown beside the
      // field, and what was typed stays in the form.
      await page.selectOption('#set-quotas-form select[name=user_kind]', 'name');
      await page.fill('#set-quotas-form input[name=user]', 'bob');
      await page.fill('#set-quotas-form input[name=producer_byte_rate]', '1.5');
      const [resp] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.click('#set-quotas-submit'),
      ]);
      assert.equal(resp.status(), 400);
      await textMatching(page.locator('#set-quotas-producer_byte_rate-error'), /producer_byte_rate cannot be a fractional value/);
      assert.equal(await page.inputValue('#set-quotas-form input[name=user]'), 'bob');
      assert.equal(await page.locator('#quotas-table tr[data-user="bob"]').count(), 0);
    });

    const form = row.locator('form.delete-quota-form');
    const button = form.locator('.delete-quota-submit');
    const confirm = form.locator('input[name=confirm]');
    await s.step('remove-confirm', async () => {
      await s.goto('/quotas');
      assert.equal(await form.getAttribute('data-confirm-name'), ENTITY);
      assert.equal(await button.isDisabled(), true, 'disabled before anything is typed');
      await confirm.fill('user=alice');
      assert.equal(await button.isDisabled(), true, 'disabled for a partial entity');
      await confirm.fill(ENTITY);
      assert.equal(await button.isEnabled(), true, 'enabled once the entity is typed');
    });
    await s.step('removed', async () => {
      await Promise.all([page.waitForURL(/\/quotas\?notice=/), button.click()]);
      await textMatching(page.locator('#notice'), /removed/);
      assert.equal(await page.locator(`#quotas-table tr[data-entity="${ENTITY}"]`).count(), 0);
      await page.locator('#quotas-none').waitFor();
    });
    await waitFor('no quotas left for the CLI', async () => cliQuotas(s.cluster.bootstrap).length === 0);

    await s.step('audit', async () => {
      await s.goto('/audit');
      const set = page.locator(`#audit-table tr[data-action="alter-client-quotas"].ok`);
      assert.ok(await set.count() >= 1, 'the set is audited');
      assert.match(await set.first().textContent(), /user=alice,client-id=<default>[\s\S]*1048576/);
      const removed = page.locator('#audit-table tr[data-action="delete-client-quotas"].ok');
      assert.equal(await removed.count(), 1, 'the removal is audited');
      assert.match(await removed.textContent(), /producer_byte_rate[\s\S]*request_percentage/);
      assert.ok(await page.locator('#audit-table tr[data-action="alter-client-quotas"].bad').count() >= 1, 'the refusal is audited');
    });
  });
});
