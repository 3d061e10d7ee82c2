// Consumer lag in Chromium on a 3-node cluster: a live kafka-python member that committed
// on one of its two partitions shows the other one's backlog counted from the log start
// (labelled, in the total, on /metrics); then node 1, first in the console's bootstrap
// list, is killed: the banner names it instead of calling the cluster unreachable, pages
// keep serving, /brokers lists it (down) and /brokers/1 answers, and the partition only it
// held is shown with its last good lag, marked, not 0.
// Screenshots: tests/artifacts/browser/lag-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cells, python, startStack, textMatching, waitFor } from './lib/console.mjs';

describe('lag', () => {
  let s;
  const members = [];
  before(async () => {
    s = await startStack('lag', { nodes: 3, consoleArgs: ['--request-timeout-ms', '2000'] });
  });
  after(async () => {
    for (const m of members) await m.leave().catch(() => {});
    if (s) await s.close();
  });

  const produce = (topic, partition, n) => {
    const r = spawnSync('kcat', ['-P', '-b', s.cluster.bootstrap, '-t', topic, '-p', String(partition)], {
      input: Array.from({ length: n }, (_, i) => `v${i}`).join('\n') + '\n', encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
  };
  const lagRow = (group, topic, p) => s.page.locator(`#lag-table tr[data-topic="${topic}"][data-partition="${p}"]`);

  it('counts uncommitted partitions, and shows a killed bootstrap broker as partial', async () => {
    const { page } = s;
    for (const [name, partitions, rf] of [['lagged', 2, 3], ['solo', 3, 1]]) {
      const r = await s.json('/topics', { method: 'POST', body: { name, partitions, replication_factor: rf } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    for (const p of [0, 1]) produce('lagged', p, 5);
    for (const p of [0, 1, 2]) produce('solo', p, 4);
    const partial = python('lag-member-partial', ['member', s.cluster.bootstrap, 'partial', 'lagged', JSON.stringify({ 0: 2 })]);
    members.push(partial);
    await partial.line(/^committed /);
    const watcher = python('lag-member-watch', ['member', s.cluster.bootstrap, 'watch', 'solo', JSON.stringify({ 0: 1, 1: 1, 2: 1 })]);
    members.push(watcher);
    await watcher.line(/^committed /);

    await s.step('uncommitted-partition', async () => {
      await waitFor('both partitions of the partial group', async () => {
        const g = (await s.json('/groups/partial')).body.group;
        return g && g.members.length === 1 && g.partitions.length === 2;
      });
      await s.goto('/groups/partial');
      assert.equal(await lagRow('partial', 'lagged', 1).getAttribute('data-basis'), 'log_start');
      const c = await cells(lagRow('partial', 'lagged', 1));
      assert.equal(c[2], 'none');
      assert.match(c[4], /^5 \(no commit: from log start\)$/);
      assert.equal(await page.getAttribute('#group-total-lag', 'data-lag'), '8', '3 behind the commit + 5 never committed');
      await textMatching(page.locator('#group-total-lag'), /^8 incl\. 1 partition\(s\) with no commit/);
    });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /kafka_consumergroup_lag\{consumergroup="partial",partition="1",topic="lagged"\} -1\n/);
    assert.match(metrics, /rill_consumergroup_backlog_sum\{consumergroup="partial"\} 8\n/);

    const t = (await s.json('/topics/solo')).body.topic;
    const on1 = t.partitions.find((p) => p.leader === 1)?.partition;
    assert.notEqual(on1, undefined, `a partition of solo led by node 1: ${JSON.stringify(t.partitions)}`);
    await waitFor('the watch group measured', async () => {
      const g = (await s.json('/groups/watch')).body.group;
      return g && g.partitions.length === 3 && g.partitions.every((p) => p.lag === 3 && !p.error);
    });

    const node1 = s.cluster.nodes.find((n) => n.id === 1);
    await node1.stop('SIGKILL');
    await s.step('banner-names-broker-1', async () => {
      await waitFor('the banner naming broker 1', async () => {
        await s.goto('/topics');
        const b = page.locator('#cluster-banner');
        return (await b.count()) === 1 && /Not answering: broker 1/.test(await b.textContent());
      }, { interval: 500 });
      assert.doesNotMatch(await page.textContent('#cluster-banner'), /Cluster unreachable/);
      assert.ok(await page.locator('#topics-table tr[data-topic="lagged"]').count() === 1, 'the page still serves');
    });
    await s.step('brokers-lists-broker-1', async () => {
      await s.goto('/brokers');
      const state = await page.getAttribute('#brokers-table tr[data-broker="1"]', 'data-state');
      assert.notEqual(state, 'up');
      const resp = await s.goto('/brokers/1');
      assert.equal(resp.status(), 200);
    });
    await s.step('stale-partition', async () => {
      await waitFor('node 1\'s partition marked, the others measured', async () => {
        const g = (await s.json('/groups/watch')).body.group;
        return g && g.partitions.find((p) => p.partition === on1)?.error
          && g.partitions.filter((p) => p.partition !== on1).every((p) => !p.error);
      }, { interval: 500, timeout: 60_000 });
      await s.goto('/groups/watch');
      const row = lagRow('watch', 'solo', on1);
      assert.equal(await row.getAttribute('class'), 'stale');
      assert.equal(await row.getAttribute('data-status'), 'errored');
      const c = await cells(row);
      assert.equal(c[4], '3', 'the last good lag, not 0');
      assert.equal(c[5], '3', 'the last good read_committed lag (no transactions here)');
      assert.match(c[7], /last measured .* ago/);
    });
  });
});
