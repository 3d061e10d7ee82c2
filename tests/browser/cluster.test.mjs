// A 3-node rill-broker cluster and `rill console` in Chromium: the overview lists the
// three brokers; a topic created through the form with RF 3 shows three replicas in sync
// and no imbalance (100 % preferred leaders, no leader or replica skew);
// a broker's page shows its log dir and configs;
// a node stopped (SIGTERM, controlled shutdown) makes its partitions under-replicated on
// the topic page and the overview (and leader imbalance); once every node is down, the "cluster unreachable"
// banner is on every page while the last snapshot is still shown.
// Screenshots: tests/artifacts/browser/cluster-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cells, startStack, textMatching, waitFor } from './lib/console.mjs';

const TOPIC = 'replicated';

describe('cluster', () => {
  let s;
  before(async () => {
    s = await startStack('cluster', { nodes: 3, consoleArgs: ['--request-timeout-ms', '2000'] });
  });
  after(async () => { if (s) await s.close(); });

  const ids = (text) => text.split(/[^0-9]+/).filter(Boolean).map(Number).sort();

  it('shows replicas, under-replication after a node stops, and the banner once the cluster is gone', async () => {
    const { page } = s;
    await waitFor('the console to see three brokers', async () => (await s.json('/')).body.totals?.brokers === 3);

    await s.step('overview', async () => {
      await s.goto('/');
      assert.equal(await page.getAttribute('body', 'data-page'), 'overview');
      assert.equal((await page.textContent('#total-brokers')).trim(), '3');
      assert.deepEqual(await page.locator('#brokers-table tr[data-broker]').evaluateAll((rs) => rs.map((r) => r.dataset.broker)), ['1', '2', '3']);
      assert.match(await page.textContent('#controller-id'), /^\s*[123]\s*$/);
      assert.equal(await page.locator('#cluster-banner').count(), 0);
    });

    await s.step('create-rf3', async () => {
      await s.goto('/topics');
      const form = page.locator('#create-topic-form');
      await form.locator('input[name=name]').fill(TOPIC);
      await form.locator('input[name=partitions]').fill('3');
      await form.locator('input[name=replication_factor]').fill('3');
      await Promise.all([page.waitForURL(new RegExp(`/topics/${TOPIC}\\?`)), page.click('#create-topic-submit')]);
      const rows = page.locator('#partitions-table tr[data-partition]');
      assert.equal(await rows.count(), 3);
      for (let i = 0; i < 3; i++) {
        const c = await cells(rows.nth(i));
        assert.deepEqual(ids(c[2]), [1, 2, 3], `replicas of partition ${i}: ${c[2]}`);
        assert.deepEqual(ids(c[3]), [1, 2, 3], `ISR of partition ${i}: ${c[3]}`);
        assert.equal(c[7], 'no', 'not under-replicated');
      }
      await textMatching(page.locator('#topic-summary'), /RF 3/);
    });
    const created = (await s.json(`/topics/${TOPIC}`)).body.topic;
    assert.ok(created.partitions.every((p) => p.replicas.length === 3 && p.isr.length === 3), JSON.stringify(created));
    await s.step('overview-balanced', async () => {
      // Placement spreads replicas and preferred leaders evenly: no imbalance.
      await s.goto('/');
      await textMatching(page.locator('#total-partitions'), /^\s*3\s*$/);
      assert.equal((await page.textContent('#preferred-leaders')).trim(), '100.0%');
      assert.equal((await page.textContent('#leader-skew')).trim(), '0.0%');
      assert.equal((await page.textContent('#replica-skew')).trim(), '0.0%');
    });

    await s.step('broker-2', async () => {
      await s.goto('/brokers');
      assert.equal(await page.getAttribute('body', 'data-page'), 'brokers');
      // The metadata quorum (DescribeQuorum from its leader): three voters, one leads.
      const roles = await page.locator('#quorum-table tr[data-node]').evaluateAll((rs) => rs.map((r) => [r.dataset.node, r.dataset.role]));
      assert.deepEqual(roles.map(([n]) => n).sort(), ['1', '2', '3'], JSON.stringify(roles));
      assert.deepEqual(roles.filter(([, r]) => r === 'leader').map(([n]) => n), [(await page.textContent('#quorum-leader')).trim()]);
      for (const row of await page.locator('#quorum-table tbody tr').all()) {
        const c = await cells(row);
        assert.match(c[3], /^\d+$/, `lag of node ${c[0]} measured: ${c[3]}`);
      }
      await Promise.all([page.waitForURL(/\/brokers\/2$/), page.click('#brokers-table a[href="/brokers/2"]')]);
      assert.equal((await page.textContent('#broker-id')).trim(), '2');
      const dir = await cells(page.locator('#log-dirs-table tbody tr').first());
      assert.match(dir[0], /node-2$/, `log dir ${dir[0]}`);
      assert.equal(dir[1], 'online');
      assert.ok(Number(dir[2]) >= 3, `partitions in the log dir: ${dir[2]}`);
      // The volume's size and free space (DescribeLogDirs totals, from statvfs), not "-".
      assert.match(dir[4], /^\d+(\.\d)? (GiB|TiB|MiB)$/, `volume ${dir[4]}`);
      assert.match(dir[5], /^\d+(\.\d)? (GiB|TiB|MiB)$/, `free ${dir[5]}`);
      const nodeId = await cells(page.locator('#broker-configs-table tr[data-config="node.id"]'));
      assert.equal(nodeId[1], '2');
      assert.equal(await page.locator('#broker-error').count(), 0);
    });

    // Node 3 leaves (controlled shutdown): its replicas drop out of every ISR.
    const node3 = s.cluster.nodes.find((n) => n.id === 3);
    await node3.stop('SIGTERM');
    await waitFor('the console to see every partition under-replicated', async () => {
      const t = (await s.json(`/topics/${TOPIC}`)).body.topic;
      return t.partitions.every((p) => p.isr.length === 2 && !p.isr.includes(3));
    });
    await s.step('node-3-stopped-topic', async () => {
      await s.goto(`/topics/${TOPIC}`);
      const rows = page.locator('#partitions-table tr[data-partition]');
      for (let i = 0; i < 3; i++) {
        const c = await cells(rows.nth(i));
        assert.deepEqual(ids(c[3]), [1, 2], `ISR of partition ${i}: ${c[3]}`);
        assert.equal(c[7], 'yes', 'under-replicated');
        assert.notEqual(c[1], '3', 'node 3 leads nothing');
      }
      await textMatching(page.locator('#topic-summary'), /under-replicated 3/);
    });
    await waitFor('the console to list node 3 as fenced', async () =>
      (await s.json('/')).body.fenced_brokers.some((b) => b.id === 3));
    await s.step('node-3-stopped-quorum', async () => {
      // Still a voter; its last fetch grows old (or is unknown to a leader elected since).
      let last = '';
      await waitFor("node 3's last quorum fetch to age", async () => {
        await s.goto('/brokers');
        last = (await cells(page.locator('#quorum-table tr[data-node="3"]')))[4];
        return last === 'unknown' || Number(last) > 2000;
      });
      // The others keep fetching.
      for (const n of ['1', '2']) {
        const c = await cells(page.locator(`#quorum-table tr[data-node="${n}"]`));
        assert.ok(c[4] !== 'unknown' && Number(c[4]) < 2000, `node ${n}'s last fetch: ${c[4]}`);
      }
    });
    await s.step('node-3-stopped-overview', async () => {
      await s.goto('/');
      assert.ok(Number(await page.textContent('#total-under-replicated')) >= 3);
      // Node 3's preferred leadership moved away: fewer preferred leaders, skewed leaders.
      const pct = async (id) => Number((await page.textContent(id)).trim().replace(/%$/, ''));
      assert.ok(await pct('#preferred-leaders') < 100, await page.textContent('#preferred-leaders'));
      assert.ok(await pct('#leader-skew') > 0, await page.textContent('#leader-skew'));
      // Two nodes still answer: the banner names the stopped one, not the whole cluster.
      await textMatching(page.locator('#cluster-banner'), /Not answering: broker 3 /);
      assert.doesNotMatch(await page.textContent('#cluster-banner'), /Cluster unreachable/);
      // Metadata leaves the fenced node out; the overview still shows it, marked down.
      await textMatching(page.locator('#broker-3-fenced'), /fenced/);
      const row = await cells(page.locator('#brokers-table tr[data-broker="3"]'));
      assert.equal(row[0], '3');
    });

    // The rest go away at once (kill -9: a lone node cannot finish a controlled shutdown).
    await Promise.all(s.cluster.nodes.filter((n) => n.id !== 3).map((n) => n.stop('SIGKILL')));
    await waitFor('the console to report the cluster unreachable', async () => (await s.json('/')).body.layout?.banner);
    for (const [label, p, nav] of [
      ['overview', '/', 'overview'],
      ['topics', '/topics', 'topics'],
      ['topic', `/topics/${TOPIC}`, 'topics'],
      ['groups', '/groups', 'groups'],
      ['brokers', '/brokers', 'brokers'],
      ['audit', '/audit', 'audit'],
    ]) {
      await s.step(`banner-${label}`, async () => {
        const resp = await s.goto(p);
        assert.equal(resp.status(), 200, `${p} still served`);
        assert.equal(await page.getAttribute('body', 'data-page'), nav);
        const banner = page.locator('#cluster-banner');
        await banner.waitFor();
        assert.equal(await banner.getAttribute('role'), 'alert');
        assert.match(await banner.textContent(), /\S/);
      });
    }
    // The last snapshot is still there (the topic is listed); a change is refused with a
    // message, not a 500.
    await s.step('banner-create-refused', async () => {
      await s.goto('/topics');
      await page.locator(`tr[data-topic="${TOPIC}"]`).waitFor();
      await page.fill('#create-topic-form input[name=name]', 'while-down');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#create-topic-submit')]);
      assert.ok(resp.status() >= 400 && resp.status() !== 500, `status ${resp.status()}`);
      await page.locator('#cluster-banner').waitFor();
      await textMatching(page.locator('#create-topic-form .field-error'), /\S/);
    });
    await s.goto(`/topics/${TOPIC}`);
    await textMatching(page.locator('#configs-error'), /unreachable/);
    const banner = (await s.json('/topics')).body.layout.banner;
    assert.match(banner, /\S/);
  });
});
