// The transactions page in Chromium against a 1-node rill-broker and `rill console`: a
// transaction left open by a real transactional producer (kafka-python, lib/group.py txn) is
// listed as Ongoing with its partition, producer, timeout and an age; once it is open past
// its transaction.timeout.ms it is highlighted (the broker's abort sweep is slowed down here
// so the coordinator does not end it first). Screenshots: tests/artifacts/browser/
// transactions-NN-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cells, python, startStack, waitFor } from './lib/console.mjs';

const TOPIC = 'txn-browser';
const ID = 'browser-txn';
// Short, so the test sees it pass; the sweep below is far longer, so nothing aborts it.
const TIMEOUT_MS = 3000;

describe('transactions', () => {
  let s;
  let producer;
  before(async () => {
    s = await startStack('transactions', {
      nodes: 1,
      brokerOverrides: {
        'transaction.state.log.num.partitions': '3',
        'transaction.abort.timed.out.transaction.cleanup.interval.ms': '600000',
      },
    });
  });
  after(async () => {
    if (producer) producer.child.stdin.end();
    if (s) await s.close();
  });

  it('lists an open transaction and highlights it once past its timeout', async () => {
    const { page } = s;
    const r = await s.json('/topics', { method: 'POST', body: { name: TOPIC, partitions: 1 } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    producer = python('transactions-producer', ['txn', s.cluster.bootstrap, ID, TOPIC, String(TIMEOUT_MS)]);
    await producer.line(/^open$/);

    const row = page.locator(`#transactions-table tr[data-transactional-id="${ID}"]`);
    await s.step('open', async () => {
      await s.goto('/transactions');
      assert.equal(await page.getAttribute('body', 'data-page'), 'transactions');
      await row.waitFor();
      assert.equal(await row.getAttribute('data-state'), 'Ongoing');
      const c = await cells(row);
      assert.equal(c[0], ID);
      assert.match(c[2], /^\d+$/, 'a producer id');
      assert.equal(c[5], '3 s', 'the timeout');
      assert.equal(c[6], `${TOPIC}-0`, 'the partition it wrote');
      assert.notEqual(c[4], 'unknown', 'an open transaction has an age');
      // Its coordinator knows its partition: not hanging, and the search says it found none.
      assert.match(await page.textContent('#hanging-none'), /None found/);
    });
    await s.step('past-timeout', async () => {
      await waitFor('the transaction past its timeout', async () => {
        await s.goto('/transactions');
        return (await row.getAttribute('data-hanging')) === 'true';
      }, { interval: 500 });
      assert.match(await row.getAttribute('class'), /hanging/);
      assert.equal(await row.getAttribute('data-state'), 'Ongoing', 'still open: nobody aborted it');
    });
    // The JSON form says the same.
    const j = await s.json('/transactions');
    assert.equal(j.status, 200);
    const t = (j.body.transactions || []).find((x) => x.transactional_id === ID);
    assert.ok(t, JSON.stringify(j.body));
    assert.equal(t.state, 'Ongoing');
  });
});
