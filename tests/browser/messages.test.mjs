// The message browser in Chromium against a 1-node rill-broker cluster and `rill console`:
// records produced through the console's produce form (partition 0, with a key, a JSON
// value and a header) and by kcat (partition 1), then browsed by partition and offset,
// rendered as text, pretty JSON and hex. Screenshots: tests/artifacts/browser/messages-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startStack, textMatching } from './lib/console.mjs';

const TOPIC = 'clicks';
const FORM_RECORDS = [
  { key: 'user-1', value: '{"page":"/home","ms":12}', headers: 'source=browser' },
  { key: 'user-2', value: '{"page":"/cart","ms":40}', headers: '' },
  { key: '', value: 'not json at all', headers: '' },
];
const KCAT_RECORDS = [['k-a', 'alpha'], ['k-b', 'bravo'], ['k-c', 'charlie']];

const hex = (s) => Buffer.from(s, 'utf8').toString('hex');
const squash = (s) => s.replace(/[^0-9a-fA-F]/g, '').toLowerCase();

describe('messages', () => {
  let s;
  before(async () => { s = await startStack('messages', { nodes: 1 }); });
  after(async () => { if (s) await s.close(); });

  it('produces through the form and kcat, browses by partition and offset as text, JSON and hex', async () => {
    const { page } = s;
    const created = await s.json('/topics', { method: 'POST', body: { name: TOPIC, partitions: 2 } });
    assert.equal(created.status, 200, JSON.stringify(created.body));

    await s.goto(`/topics/${TOPIC}`);
    for (const [i, r] of FORM_RECORDS.entries()) {
      await s.step(`produce-form-${i}`, async () => {
        const form = page.locator('#produce-form');
        await form.locator('input[name=partition]').fill('0');
        await form.locator('input[name=key]').fill(r.key);
        await form.locator('textarea[name=value]').fill(r.value);
        await form.locator('textarea[name=headers]').fill(r.headers);
        await Promise.all([page.waitForURL(/\/messages/), page.click('#produce-submit')]);
        // The answer is the record's page in the message browser.
        await page.locator(`#messages-table tr[data-offset="${i}"]`).waitFor();
        await page.goto(`${s.url}/topics/${TOPIC}`);
      });
    }

    const boot = s.cluster.bootstrap;
    const kcat = spawnSync('kcat', ['-P', '-b', boot, '-t', TOPIC, '-p', '1', '-K', ':'], {
      input: KCAT_RECORDS.map(([k, v]) => `${k}:${v}`).join('\n') + '\n', encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(kcat.status, 0, `kcat -P: ${kcat.stderr}${kcat.error ?? ''}`);

    // The JSON form agrees on what landed where.
    const m1 = await s.json(`/topics/${TOPIC}/messages?partition=1`);
    assert.equal(m1.status, 200, JSON.stringify(m1.body));
    assert.deepEqual(m1.body.records.map((r) => [r.key, r.value]), KCAT_RECORDS);

    await s.step('browse-open', async () => {
      await s.goto(`/topics/${TOPIC}`);
      await Promise.all([page.waitForURL(/\/messages/), page.click('#browse-link')]);
      await page.locator('#messages-table').waitFor();
    });
    await s.step('browse-partition-1-from-offset-1', async () => {
      await page.selectOption('#browse-form select[name=partition]', '1');
      await page.fill('#browse-form input[name=offset]', '1');
      await Promise.all([page.waitForURL(/partition=1/), page.click('#browse-submit')]);
      await textMatching(page.locator('#browse-range'), /partition 1: offsets 0 to 3; showing 2 from 1/);
      const rows = page.locator('#messages-table tr[data-offset]');
      assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.offset)), ['1', '2']);
      assert.deepEqual(await rows.locator('pre.key').allTextContents(), ['k-b', 'k-c']);
      assert.deepEqual(await rows.locator('pre.value').allTextContents(), ['bravo', 'charlie']);
    });
    await s.step('browse-partition-0-text', async () => {
      await page.selectOption('#browse-form select[name=partition]', '0');
      await page.fill('#browse-form input[name=offset]', '');
      await page.selectOption('#browse-form select[name=format]', 'text');
      await Promise.all([page.waitForURL(/partition=0/), page.click('#browse-submit')]);
      const rows = page.locator('#messages-table tr[data-offset]');
      await textMatching(page.locator('#browse-range'), /partition 0: offsets 0 to 3; showing 3 from 0/);
      assert.deepEqual(await rows.locator('pre.key').allTextContents(), ['user-1', 'user-2', 'null']);
      assert.deepEqual(await rows.locator('pre.value').allTextContents(), FORM_RECORDS.map((r) => r.value));
      assert.match(await rows.nth(0).locator('pre.headers').textContent(), /source.*browser/);
    });
    await s.step('browse-partition-0-json', async () => {
      await page.selectOption('#browse-form select[name=format]', 'json');
      await Promise.all([page.waitForURL(/format=json/), page.click('#browse-submit')]);
      const values = await page.locator('#messages-table tr[data-offset] pre.value').allTextContents();
      // Pretty-printed: one member a line, indented (the console sorts members by name).
      assert.deepEqual(JSON.parse(values[0]), { page: '/home', ms: 12 });
      assert.match(values[0], /^\{\n {2}"[a-z]+": .+,\n {2}"[a-z]+": .+\n\}$/);
      assert.deepEqual(JSON.parse(values[1]), { page: '/cart', ms: 40 });
      assert.match(values[1], /\n/);
      // Not JSON: shown as it is.
      assert.match(values[2], /not json at all/);
    });
    await s.step('browse-partition-0-hex', async () => {
      await page.selectOption('#browse-form select[name=format]', 'hex');
      await Promise.all([page.waitForURL(/format=hex/), page.click('#browse-submit')]);
      const rows = page.locator('#messages-table tr[data-offset]');
      const values = await rows.locator('pre.value').allTextContents();
      assert.deepEqual(values.map(squash), FORM_RECORDS.map((r) => hex(r.value)));
      assert.equal(squash((await rows.locator('pre.key').allTextContents())[0]), hex('user-1'));
    });
    await s.step('browse-from-timestamp', async () => {
      // From the second form record's timestamp (ISO 8601): the browser starts at it.
      const recs = (await s.json(`/topics/${TOPIC}/messages?partition=0`)).body.records;
      assert.ok(recs[1].timestamp_ms > recs[0].timestamp_ms, 'distinct timestamps');
      await page.selectOption('#browse-form select[name=format]', 'text');
      await page.fill('#browse-form input[name=offset]', '');
      await page.fill('#browse-form input[name=timestamp]', new Date(recs[1].timestamp_ms).toISOString());
      await Promise.all([page.waitForURL(/timestamp=/), page.click('#browse-submit')]);
      await textMatching(page.locator('#browse-range'), /showing 2 from 1/);
      assert.deepEqual(await page.locator('#messages-table tr[data-offset] pre.key').allTextContents(), ['user-2', 'null']);
      await page.fill('#browse-form input[name=timestamp]', '');
    });
    await s.step('browse-bad-offset', async () => {
      await page.fill('#browse-form input[name=offset]', 'ten');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.url().includes('/messages?')), page.click('#browse-submit')]);
      assert.equal(resp.status(), 400);
      await page.locator('#browse-offset-error').waitFor();
    });
  });
});
