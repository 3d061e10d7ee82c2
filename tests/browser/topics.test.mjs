// Topic flows in Chromium against a 1-node rill-broker cluster and `rill console`:
// create through the form (then search, filter, sort), config edits with a bad and a good
// value, adding partitions (with the refusal of a count not above the current one), and
// deletion with the typed confirmation, and paging through 2,000 topics on the server. Each
// flow's outcome is cross-checked through the console's JSON form. Screenshots: tests/artifacts/browser/topics-NN-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cells, python, startStack, textMatching, waitFor } from './lib/console.mjs';

describe('topics', () => {
  let s;
  before(async () => { s = await startStack('topics', { nodes: 1 }); });
  after(async () => { if (s) await s.close(); });

  /** Creates a topic through the JSON API (for flows that are not about creating). */
  async function createTopic(name, partitions = 1, configs) {
    const r = await s.json('/topics', { method: 'POST', body: { name, partitions, configs } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }

  const configOf = (topicJson, key) => topicJson.configs.find((c) => c.name === key);

  it('creates a topic through the form; the list, search, filter and sort find it', async () => {
    const { page } = s;
    await createTopic('payments', 5);
    await s.step('create-topics-page', async () => {
      await s.goto('/topics');
      assert.equal(await page.getAttribute('body', 'data-page'), 'topics');
      await page.locator('tr[data-topic="payments"]').waitFor();
      assert.equal(await page.locator('tr[data-topic="orders"]').count(), 0);
    });
    await s.step('create-bad-name', async () => {
      await page.fill('#create-topic-form input[name=name]', 'no spaces!');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#create-topic-submit')]);
      assert.equal(resp.status(), 400);
      await textMatching(page.locator('#create-topic-name-error'), /\S/);
      assert.equal(await page.inputValue('#create-topic-form input[name=name]'), 'no spaces!', 'the form keeps the input');
    });
    await s.step('create-rf-above-brokers', async () => {
      await page.fill('#create-topic-form input[name=name]', 'too-replicated');
      await page.fill('#create-topic-form input[name=replication_factor]', '3');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#create-topic-submit')]);
      assert.ok(resp.status() >= 400 && resp.status() < 500, `status ${resp.status()}`);
      await textMatching(page.locator('#create-topic-replication_factor-error'), /larger than/);
    });
    assert.equal((await s.json('/topics/too-replicated')).status, 404, 'nothing created');
    await s.step('create-form-filled', async () => {
      const form = page.locator('#create-topic-form');
      await form.locator('input[name=name]').fill('orders');
      await form.locator('input[name=partitions]').fill('3');
      await form.locator('input[name=replication_factor]').fill('1');
      await form.locator('textarea[name=configs]').fill('retention.ms=3600000\ncleanup.policy=delete');
    });
    await s.step('create-submitted', async () => {
      await Promise.all([page.waitForURL(/\/topics\/orders(\?|$)/), page.click('#create-topic-submit')]);
      assert.equal(await page.textContent('#topic-name'), 'orders');
      await textMatching(page.locator('#notice'), /orders/);
      assert.equal(await page.locator('#partitions-table tr[data-partition]').count(), 3);
      const retention = page.locator('#configs-table tr[data-config="retention.ms"]');
      assert.equal((await retention.locator('.config-value').textContent()).trim(), '3600000');
      assert.match(await retention.getAttribute('class'), /override/);
    });
    const j = await s.json('/topics/orders');
    assert.equal(j.status, 200);
    assert.equal(j.body.topic.partitions.length, 3);
    assert.equal(configOf(j.body, 'retention.ms').value, '3600000');

    await s.step('create-listed', async () => {
      await page.click('#nav-topics');
      const row = page.locator('tr[data-topic="orders"]');
      await row.waitFor();
      const c = await cells(row);
      assert.equal(c[0], 'orders');
      assert.equal(c[1], '3', 'partitions column');
      assert.equal(c[2], '1', 'RF column');
      await textMatching(page.locator('#topic-count'), /^2 of 2$/);
    });
    await s.step('create-search', async () => {
      await page.fill('#topic-search-form input[name=q]', 'ord');
      await Promise.all([page.waitForURL(/[?&]q=ord/), page.click('#topic-search-form button[type=submit]')]);
      assert.deepEqual(await page.locator('#topics-table tr[data-topic]').evaluateAll((rows) => rows.map((r) => r.dataset.topic)), ['orders']);
      await textMatching(page.locator('#topic-count'), /^1 of 2$/);
    });
    await s.step('create-filter-internal', async () => {
      await page.fill('#topic-search-form input[name=q]', '');
      await page.selectOption('#topic-search-form select[name=filter]', 'internal');
      await Promise.all([page.waitForURL(/filter=internal/), page.click('#topic-search-form button[type=submit]')]);
      const names = await page.locator('#topics-table tr[data-topic]').evaluateAll((rows) => rows.map((r) => r.dataset.topic));
      assert.ok(!names.includes('orders') && !names.includes('payments'), `internal filter shows ${names}`);
    });
    await s.step('create-filter-user-sorted', async () => {
      await page.selectOption('#topic-search-form select[name=filter]', 'user');
      await page.selectOption('#topic-search-form select[name=sort]', 'partitions');
      await Promise.all([page.waitForURL(/sort=partitions/), page.click('#topic-search-form button[type=submit]')]);
      // Most partitions first: payments (5) before orders (3).
      assert.deepEqual(await page.locator('#topics-table tr[data-topic]').evaluateAll((rows) => rows.map((r) => r.dataset.topic)), ['payments', 'orders']);
    });
    const list = await s.json('/topics?q=ord');
    assert.deepEqual(list.body.topics.map((t) => t.name), ['orders']);
  });

  it('edits a config: a bad value is shown beside the field and changes nothing; a good one is saved with its source', async () => {
    const { page } = s;
    await createTopic('configs-demo', 1);
    const before = configOf((await s.json('/topics/configs-demo')).body, 'retention.ms');
    assert.equal(before.source, 'DEFAULT_CONFIG');
    const row = page.locator('#configs-table tr[data-config="retention.ms"]');

    await s.step('config-page', async () => {
      await s.goto('/topics/configs-demo');
      assert.equal((await row.locator('.config-value').textContent()).trim(), before.value);
      assert.equal(await page.locator('#alter-config-value-error').count(), 0);
    });
    await s.step('config-bad-value', async () => {
      await page.fill('#alter-config-form input[name=key]', 'retention.ms');
      await page.fill('#alter-config-form input[name=value]', 'soon');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#alter-config-set')]);
      assert.equal(resp.status(), 400);
      const err = page.locator('#alter-config-value-error');
      await err.waitFor();
      assert.match(await err.textContent(), /\S/);
      // Beside the field: the error follows the value input inside the same form.
      assert.ok(await page.locator('#alter-config-form label:has(input[name=value]) + #alter-config-value-error').count() === 1,
        'the error sits right after the value field');
      // The form keeps what was typed; the table still shows the old value.
      assert.equal(await page.inputValue('#alter-config-form input[name=value]'), 'soon');
      assert.equal((await row.locator('.config-value').textContent()).trim(), before.value);
    });
    const unchanged = configOf((await s.json('/topics/configs-demo')).body, 'retention.ms');
    assert.equal(unchanged.value, before.value);
    assert.equal(unchanged.source, 'DEFAULT_CONFIG');

    await s.step('config-unknown-key', async () => {
      await page.fill('#alter-config-form input[name=key]', 'retention.nope');
      await page.fill('#alter-config-form input[name=value]', '1');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 400), page.click('#alter-config-set')]);
      await page.locator('#alter-config-key-error').waitFor();
    });
    await s.step('config-good-value', async () => {
      await page.fill('#alter-config-form input[name=key]', 'retention.ms');
      await page.fill('#alter-config-form input[name=value]', '7200000');
      await Promise.all([page.waitForURL(/\/topics\/configs-demo\?notice=/), page.click('#alter-config-set')]);
      await page.locator('#notice').waitFor();
      assert.equal(await page.locator('.field-error').count(), 0);
      assert.equal((await row.locator('.config-value').textContent()).trim(), '7200000');
      assert.match(await row.getAttribute('class'), /override/);
      const c = await cells(row);
      assert.match(c[3], /TOPIC/, `source column: ${c[3]}`);
    });
    const saved = configOf((await s.json('/topics/configs-demo')).body, 'retention.ms');
    assert.equal(saved.value, '7200000');
    assert.match(saved.source, /TOPIC_CONFIG/);

    await s.step('config-reset-default', async () => {
      await page.fill('#alter-config-form input[name=key]', 'retention.ms');
      await page.fill('#alter-config-form input[name=value]', '');
      await Promise.all([page.waitForURL(/notice=/), page.click('#alter-config-delete')]);
      assert.equal((await row.locator('.config-value').textContent()).trim(), before.value);
      assert.doesNotMatch((await row.getAttribute('class')) ?? '', /override/);
    });
    assert.equal(configOf((await s.json('/topics/configs-demo')).body, 'retention.ms').source, 'DEFAULT_CONFIG');
  });

  it('adds partitions; a count not above the current one is refused beside the field', async () => {
    const { page } = s;
    await createTopic('grow', 2);
    const input = page.locator('#add-partitions-form input[name=partitions]');
    await s.step('partitions-page', async () => {
      await s.goto('/topics/grow');
      assert.equal(await page.locator('#partitions-table tr[data-partition]').count(), 2);
      assert.equal(await input.inputValue(), '3', 'the form proposes one more');
    });
    await s.step('partitions-browser-refuses', async () => {
      // The browser's own check (min = current + 1) keeps a too-small count from leaving...
      await input.fill('2');
      assert.equal(await input.evaluate((el) => el.validity.rangeUnderflow), true);
      await page.click('#add-partitions-submit');
      assert.match(page.url(), /\/topics\/grow$/);
    });
    await s.step('partitions-server-refuses', async () => {
      // ...and with that check off, the console refuses it beside the field.
      await page.locator('#add-partitions-form').evaluate((f) => { f.noValidate = true; });
      await input.fill('2');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#add-partitions-submit')]);
      assert.equal(resp.status(), 400);
      const err = page.locator('#add-partitions-partitions-error');
      await err.waitFor();
      assert.match(await err.textContent(), /2/);
      assert.equal(await page.locator('#partitions-table tr[data-partition]').count(), 2);
    });
    assert.equal((await s.json('/topics/grow')).body.topic.partitions.length, 2);
    await s.step('partitions-added', async () => {
      await page.fill('#add-partitions-form input[name=partitions]', '5');
      await Promise.all([page.waitForURL(/\/topics\/grow\?notice=/), page.click('#add-partitions-submit')]);
      await page.locator('#notice').waitFor();
      assert.deepEqual(await page.locator('#partitions-table tr[data-partition]').evaluateAll((rows) => rows.map((r) => r.dataset.partition)), ['0', '1', '2', '3', '4']);
    });
    const grown = (await s.json('/topics/grow')).body.topic.partitions;
    assert.equal(grown.length, 5);
    assert.ok(grown.every((p) => p.leader === 1), JSON.stringify(grown));
  });

  it('deletes a topic only once its name is typed', async () => {
    const { page } = s;
    await createTopic('doomed', 1);
    const button = page.locator('#delete-topic-submit');
    const confirm = page.locator('#delete-topic-form input[name=confirm]');
    await s.step('delete-page', async () => {
      await s.goto('/topics/doomed');
      assert.equal(await page.getAttribute('#delete-topic-form', 'data-confirm-name'), 'doomed');
      assert.equal(await button.isDisabled(), true, 'disabled before anything is typed');
    });
    await s.step('delete-wrong-name', async () => {
      await confirm.fill('doome');
      assert.equal(await button.isDisabled(), true, 'disabled for a wrong name');
    });
    await s.step('delete-right-name', async () => {
      await confirm.fill('doomed');
      assert.equal(await button.isEnabled(), true, 'enabled once the name is typed');
    });
    await s.step('delete-done', async () => {
      await Promise.all([page.waitForURL(/\/topics(\?|$)/), button.click()]);
      await textMatching(page.locator('#notice'), /doomed/);
      assert.equal(await page.locator('tr[data-topic="doomed"]').count(), 0);
    });
    await waitFor('the topic gone from the JSON form', async () => (await s.json('/topics/doomed')).status === 404);
  });

  it('pages through 2,000 topics on the server: 100 a page, links both ways, any page size up to 1,000', async () => {
    const { page } = s;
    const made = python('topics-bulk', ['topics', s.cluster.bootstrap, 'bulk-', '2000']);
    await made.line(/^created 2000$/, 180_000);
    await waitFor('the console lists the 2,000 topics', async () => (await s.json('/topics?q=bulk-&per_page=1')).body.paging.matching === 2000, { timeout: 60_000 });
    const shown = () => page.locator('#topics-table tr[data-topic]').evaluateAll((rows) => rows.map((r) => r.dataset.topic));
    await s.step('pages-first', async () => {
      await s.goto('/topics?q=bulk-');
      const names = await shown();
      assert.equal(names.length, 100, 'one page of the default size');
      assert.equal(names[0], 'bulk-00000');
      assert.equal(names[99], 'bulk-00099');
      await textMatching(page.locator('#topic-count'), /^2000 of \d+$/);
      await textMatching(page.locator('#topics-page'), /^1–100 of 2000, page 1 of 20$/);
      assert.equal(await page.locator('#topics-prev').count(), 0, 'no page before the first');
    });
    await s.step('pages-next', async () => {
      await Promise.all([page.waitForURL(/[?&]page=2(&|$)/), page.click('#topics-next')]);
      const names = await shown();
      assert.deepEqual([names.length, names[0], names[99]], [100, 'bulk-00100', 'bulk-00199']);
      await textMatching(page.locator('#topics-page'), /^101–200 of 2000, page 2 of 20$/);
    });
    await s.step('pages-last-and-back', async () => {
      await s.goto('/topics?q=bulk-&page=20');
      let names = await shown();
      assert.deepEqual([names.length, names[99]], [100, 'bulk-01999']);
      assert.equal(await page.locator('#topics-next').count(), 0, 'no page after the last');
      await Promise.all([page.waitForURL(/[?&]page=19(&|$)/), page.click('#topics-prev')]);
      names = await shown();
      assert.equal(names[0], 'bulk-01800');
    });
    await s.step('pages-search-keeps-paging', async () => {
      // The search form keeps the page size and starts again at page 1.
      await page.fill('#topic-search-form input[name=q]', 'bulk-019');
      await Promise.all([page.waitForURL(/[?&]q=bulk-019/), page.click('#topic-search-form button[type=submit]')]);
      const names = await shown();
      assert.equal(names.length, 100);
      assert.equal(names[0], 'bulk-01900');
      assert.equal(await page.locator('#topics-pager').count(), 0, 'one page: no pager');
    });
    const big = await s.json('/topics?q=bulk-&page=3&per_page=500');
    assert.equal(big.status, 200);
    assert.equal(big.body.topics.length, 500);
    assert.equal(big.body.topics[0].name, 'bulk-01000');
    assert.deepEqual([big.body.paging.page, big.body.paging.pages, big.body.paging.matching], [3, 4, 2000]);
    const tooBig = await s.json('/topics?per_page=5000');
    assert.equal(tooBig.status, 400);
    assert.match(JSON.stringify(tooBig.body), /per_page/);
    const notANumber = await s.json('/topics?page=first');
    assert.equal(notANumber.status, 400);
    assert.match(JSON.stringify(notANumber.body), /page/);
  });
});
