// Group status, forecast and history gaps in Chromium, one broker, the console's default
// thresholds: a group that committed once and left becomes "stopped" (with the reason) once
// the stall threshold has passed; of two groups on one topic while producers write, the one
// consuming faster shows "catching up in ~…" and the slower one "falling behind by …"; a
// group whose topic is deleted keeps its last lag, marked, and its history chart shows a gap.
// Screenshots: tests/artifacts/browser/lag-status-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cells, python, startStack, textMatching, waitFor } from './lib/console.mjs';

describe('lag status', () => {
  let s;
  before(async () => { s = await startStack('lag-status'); });
  after(async () => { if (s) await s.close(); });

  const produce = (topic, n) => {
    const r = spawnSync('kcat', ['-P', '-b', s.cluster.bootstrap, '-t', topic, '-p', '0'], {
      input: Array.from({ length: n }, (_, i) => `v${i}`).join('\n') + '\n', encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
  };
  const commitOnce = async (group, topic, offset) => {
    const m = python(`lag-status-${group}`, ['member', s.cluster.bootstrap, group, topic, JSON.stringify({ 0: offset })]);
    await m.line(/^committed /);
    assert.equal(await m.leave(), 0);
  };

  it('reaches stopped, forecasts both ways, and leaves a gap for a deleted topic', { timeout: 280_000 }, async () => {
    const { page } = s;
    for (const name of ['flow', 'doomed']) {
      const r = await s.json('/topics', { method: 'POST', body: { name, partitions: 1 } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    produce('flow', 2000);
    produce('doomed', 5);
    const stoppedAt = Date.now();
    await commitOnce('idle', 'flow', 100);
    await commitOnce('gone', 'doomed', 1);

    // Forecast: producers write ~40/s while "fast" commits 200/s and "slow" 10/s.
    const fast = python('lag-status-fast', ['pace', s.cluster.bootstrap, 'fast', 'flow', '0', '200', '10']);
    const slow = python('lag-status-slow', ['pace', s.cluster.bootstrap, 'slow', 'flow', '0', '10', '10']);
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      produce('flow', 10);
      await new Promise((r) => setTimeout(r, 250));
    }
    await fast.line(/^paced /);
    await slow.line(/^paced /);
    await s.step('forecast-list', async () => {
      await waitFor('both forecasts', async () => {
        const gs = (await s.json('/groups')).body.groups;
        const f = (id) => gs.find((g) => g.group_id === id)?.forecast?.state;
        return f('fast') === 'catching_up' && f('slow') === 'falling_behind';
      });
      await s.goto('/groups');
      assert.match((await cells(page.locator('#groups-table tr[data-group="fast"]')))[7], /^catching up in ~/);
      assert.match((await cells(page.locator('#groups-table tr[data-group="slow"]')))[7], /^falling behind by \d/);
    });
    await s.step('forecast-group', async () => {
      await s.goto('/groups/fast');
      assert.equal(await page.getAttribute('#group-forecast', 'data-state'), 'catching_up');
    });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /rill_consumergroup_catchup_seconds\{consumergroup="slow"\} \+Inf\n/);
    assert.match(metrics, /rill_consumergroup_catchup_seconds\{consumergroup="fast"\} \d+(\.\d+)?\n/);

    // A deleted topic: the last lag stays, marked; the history chart breaks.
    await waitFor('history for the gone group', async () =>
      (await s.json('/groups/gone/lag-history?range=1h')).body.points.filter((p) => p[1] === 4).length >= 3);
    const del = await s.json('/topics/doomed/delete', { method: 'POST', body: { confirm: 'doomed' } });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    await s.step('deleted-topic-gap', async () => {
      await waitFor('a gap in the gone group\'s history', async () =>
        (await s.json('/groups/gone/lag-history?range=1h')).body.points.some((p) => p[1] === null), { timeout: 60_000 });
      await s.goto('/groups/gone');
      const row = page.locator('#lag-table tr[data-topic="doomed"][data-partition="0"]');
      assert.equal(await row.getAttribute('class'), 'stale');
      assert.equal((await cells(row))[4], '4', 'the last good lag, not 0');
      await textMatching(page.locator('#group-status'), /^errored$/);
      await waitFor('the chart drawn with its gap', async () => Number(await page.getAttribute('#lag-chart', 'data-gaps')) >= 1);
      // A cycle may catch the member after it joined and before it committed: that point
      // counts the backlog from the log start (5, what auto.offset.reset=earliest reads).
      // After the commit every point is the committed lag 4 or a gap, never 0.
      const points = (await s.json('/groups/gone/lag-history?range=1h')).body.points;
      const firstCommitted = points.findIndex((p) => p[1] === 4);
      assert.ok(points.slice(0, firstCommitted).every((p) => p[1] === 5), `before the commit, the whole backlog: ${JSON.stringify(points)}`);
      assert.ok(points.slice(firstCommitted).every((p) => p[1] === null || p[1] === 4), `no zero, nothing unmeasured: ${JSON.stringify(points)}`);
    });

    // Stopped under the default thresholds (stall 120 s): no members, the committed offset
    // still, the end offset grown.
    await s.step('stopped', async () => {
      await waitFor('the idle group to be stopped', async () =>
        (await s.json('/groups/idle')).body.group?.status === 'stopped', { timeout: 200_000, interval: 1000 });
      assert.ok(Date.now() - stoppedAt >= 110_000, 'not before the stall threshold');
      await s.goto('/groups/idle');
      await textMatching(page.locator('#group-status'), /^stopped$/);
      await textMatching(page.locator('#group-status-reason'), /flow-0: committed offset 100 unchanged for .* \(no members\) while the end offset grew by \d+/);
    });
  });
});
