// Consumer-group flow in Chromium against a 1-node rill-broker cluster and `rill console`:
// a kafka-python consumer (lib/group.py, a child process) joins a group and commits
// offsets; the group list and page show its member and lag (and the lag chart draws); a
// max-lag threshold set through the form turns its status to lagging (the list's status
// filter agrees); a reset is refused while the member is there; once it left, a reset is
// previewed (nothing changes), applied (the new committed offsets show), and a malformed
// value is refused beside the field; the group is deleted with the typed confirmation.
// The broker's own view of the offsets (kafka-python's admin client) backs every step.
// Screenshots: tests/artifacts/browser/groups-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cells, python, startStack, textMatching, waitFor } from './lib/console.mjs';

const TOPIC = 'events';
const GROUP = 'billing';
const END = { 0: 5, 1: 3 };        // records produced per partition
const COMMITTED = { 0: 2, 1: 1 };  // what the member commits: lag 3 + 2


// Apply asks for a confirmation first: the plan comes back with a Confirm button and
// nothing is committed until it is pressed. Returns the confirming POST's response.
async function applyReset(page) {
  await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 200), page.click('#reset-offsets-apply')]);
  assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'false', 'Apply alone commits nothing');
  await page.locator('#reset-offsets-confirm-form').waitFor();
  return Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#reset-offsets-confirm')]);
}

describe('groups', () => {
  let s;
  let member;
  before(async () => {
    s = await startStack('groups', {
      nodes: 1,
      brokerOverrides: {
        'group.min.session.timeout.ms': '500',
        'offsets.topic.num.partitions': '3',
        'group.consumer.heartbeat.interval.ms': '500',
      },
    });
  });
  after(async () => {
    if (member) await member.leave().catch(() => {});
    if (s) await s.close();
  });

  /** The broker's committed offsets of GROUP, as kafka-python's admin client reads them. */
  async function brokerOffsets() {
    const p = python('groups-offsets', ['offsets', s.cluster.bootstrap, GROUP]);
    const line = await p.line(/^offsets /);
    await p.exited;
    return JSON.parse(line.slice('offsets '.length));
  }

  /** Lag-table rows as [partition, committed, end, lag]. */
  async function lagRows(page) {
    const rows = page.locator(`#lag-table tr[data-topic="${TOPIC}"]`);
    const out = [];
    for (let i = 0; i < await rows.count(); i++) {
      const c = await cells(rows.nth(i));
      out.push([c[1], c[2], c[3], c[4]]);
    }
    return out;
  }

  it('shows a group\'s lag, previews and applies an offset reset', async () => {
    const { page } = s;
    const created = await s.json('/topics', { method: 'POST', body: { name: TOPIC, partitions: 2 } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    for (const [partition, n] of Object.entries(END)) {
      for (let i = 0; i < n; i++) {
        const r = await s.json(`/topics/${TOPIC}/produce`, { method: 'POST', body: { partition: Number(partition), key: `k${i}`, value: `v${i}` } });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    }

    member = python('groups-member', ['member', s.cluster.bootstrap, GROUP, TOPIC, JSON.stringify(COMMITTED)]);
    await member.line(/^committed /);
    assert.deepEqual(await brokerOffsets(), { [`${TOPIC}:0`]: 2, [`${TOPIC}:1`]: 1 });
    await waitFor('the console to see the member and both commits', async () => {
      const g = (await s.json(`/groups/${GROUP}`)).body.group;
      return g && g.members.length === 1 && g.partitions.filter((p) => p.committed >= 0).length === 2;
    });

    await s.step('list', async () => {
      await s.goto('/groups');
      const row = page.locator(`#groups-table tr[data-group="${GROUP}"]`);
      const c = await cells(row);
      assert.equal(c[0], GROUP);
      assert.equal(c[2], '1', 'members');
      assert.match(c[3], new RegExp(TOPIC));
      assert.equal(c[4], '5', 'total lag');
      assert.equal(c[8], 'classic', 'group type');
      assert.equal(await row.locator('.status').count(), 1);
    });
    await s.step('list-search', async () => {
      await page.fill('#group-search-form input[name=q]', 'bill');
      await Promise.all([page.waitForURL(/q=bill/), page.click('#group-search-form button[type=submit]')]);
      assert.deepEqual(await page.locator('#groups-table tr[data-group]').evaluateAll((rs) => rs.map((r) => r.dataset.group)), [GROUP]);
    });
    await s.step('page-lag', async () => {
      await Promise.all([page.waitForURL(new RegExp(`/groups/${GROUP}$`)), page.click(`#groups-table a[href="/groups/${GROUP}"]`)]);
      assert.equal(await page.textContent('#group-id'), GROUP);
      await textMatching(page.locator('#group-summary'), /1 member\(s\).*total lag 5/s);
      assert.deepEqual(await lagRows(page), [['0', '2', '5', '3'], ['1', '1', '3', '2']]);
      assert.match(await page.locator('#members-table tbody').textContent(), /browser-test/);
      // The lag chart draws the store's samples (the console collects every 500 ms).
      await page.locator('#lag-chart-svg').waitFor();
      assert.equal(await page.getAttribute('#lag-chart', 'data-range'), '1h');
    });
    await s.step('page-lag-chart-24h', async () => {
      await page.click('#lag-chart-ranges button[data-range="24h"]');
      await waitFor('the 24 h chart', async () => (await page.getAttribute('#lag-chart', 'data-range')) === '24h');
      await page.locator('#lag-chart-svg').waitFor();
    });
    await s.step('page-lag-chart-1h', async () => {
      // The 1 h range has a sample per collection: wait (reloading the range) for a line.
      await waitFor('two samples in the 1 h chart', async () => {
        await page.click('#lag-chart-ranges button[data-range="1h"]');
        await waitFor('the 1 h chart', async () => (await page.getAttribute('#lag-chart', 'data-range')) === '1h');
        return Number(await page.getAttribute('#lag-chart', 'data-points')) >= 2;
      }, { interval: 500 });
      const d = await page.getAttribute('#lag-chart-svg path.lag-line', 'd');
      assert.match(d, /^M[\d.]+,[\d.]+ L/, `a line: ${d}`);
    });
    await s.step('thresholds-lagging', async () => {
      // A max lag of 1 offset makes this group (lag 3 on partition 0) lagging.
      await page.fill('#thresholds-form input[name=max_lag]', '1');
      await Promise.all([page.waitForURL(/notice=/), page.click('#thresholds-submit')]);
      assert.equal(await page.inputValue('#thresholds-form input[name=max_lag]'), '1');
      await waitFor('the group status to become lagging', async () => {
        const text = (await page.textContent('#group-status')).trim();
        if (text === 'lagging') return true;
        await page.reload();
        return false;
      }, { interval: 500 });
      await textMatching(page.locator('#group-status-reason'), /lag 3 above the threshold 1/);
    });
    const listed = (await s.json('/groups')).body.groups.find((g) => g.group_id === GROUP);
    assert.equal(listed.status, 'lagging');
    await s.step('list-status-filter', async () => {
      const shown = () => page.locator('#groups-table tr[data-group]').evaluateAll((rs) => rs.map((r) => r.dataset.group));
      await s.goto('/groups');
      await page.selectOption('#group-search-form select[name=status]', 'lagging');
      await Promise.all([page.waitForURL(/status=lagging/), page.click('#group-search-form button[type=submit]')]);
      assert.deepEqual(await shown(), [GROUP]);
      assert.equal(await page.locator(`#groups-table tr[data-group="${GROUP}"] .status.status-lagging`).count(), 1);
      await page.selectOption('#group-search-form select[name=status]', 'ok');
      await Promise.all([page.waitForURL(/status=ok/), page.click('#group-search-form button[type=submit]')]);
      assert.deepEqual(await shown(), []);
      await s.goto(`/groups/${GROUP}`);
    });
    await s.step('reset-refused-while-active', async () => {
      await page.selectOption('#reset-offsets-form select[name=topic]', TOPIC);
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'earliest');
      const [resp] = await applyReset(page);
      assert.ok(resp.status() >= 400 && resp.status() < 500, `status ${resp.status()}`);
      await textMatching(page.locator('#reset-offsets-error'), /active member/);
    });
    assert.deepEqual(await brokerOffsets(), { [`${TOPIC}:0`]: 2, [`${TOPIC}:1`]: 1 }, 'nothing applied');

    assert.equal(await member.leave(), 0, 'the member left cleanly');
    member = undefined;
    await waitFor('the console to see the group empty', async () => {
      const g = (await s.json(`/groups/${GROUP}`)).body.group;
      return g && g.members.length === 0;
    });

    await s.step('reset-preview', async () => {
      await s.goto(`/groups/${GROUP}`);
      await textMatching(page.locator('#group-summary'), /0 member\(s\)/);
      await page.selectOption('#reset-offsets-form select[name=topic]', TOPIC);
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'earliest');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 200), page.click('#reset-offsets-preview')]);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'false');
      const plan = await page.locator('#reset-preview tbody tr').evaluateAll((rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim())));
      assert.deepEqual(plan, [[TOPIC, '0', '2', '0'], [TOPIC, '1', '1', '0']]);
      assert.deepEqual(await lagRows(page), [['0', '2', '5', '3'], ['1', '1', '3', '2']], 'a preview changes nothing');
    });
    assert.deepEqual(await brokerOffsets(), { [`${TOPIC}:0`]: 2, [`${TOPIC}:1`]: 1 }, 'a preview commits nothing');

    await s.step('reset-applied', async () => {
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'earliest');
      const [resp] = await applyReset(page);
      assert.equal(resp.status(), 200);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'true');
      assert.deepEqual(await lagRows(page), [['0', '0', '5', '5'], ['1', '0', '3', '3']]);
      await textMatching(page.locator('#group-summary'), /total lag 8/);
    });
    assert.deepEqual(await brokerOffsets(), { [`${TOPIC}:0`]: 0, [`${TOPIC}:1`]: 0 });
    const g = (await s.json(`/groups/${GROUP}`)).body.group;
    assert.deepEqual(g.partitions.map((p) => [p.partition, p.committed, p.lag]), [[0, 0, 5], [1, 0, 3]]);

    await s.step('reset-bad-offset', async () => {
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'offset');
      await page.fill('#reset-offsets-form input[name=value]', 'four');
      const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#reset-offsets-preview')]);
      assert.equal(resp.status(), 400);
      await page.locator('#reset-offsets-value-error').waitFor();
    });
    await s.step('reset-to-offset-applied', async () => {
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'offset');
      await page.fill('#reset-offsets-form input[name=value]', '1');
      const [resp] = await applyReset(page);
      assert.equal(resp.status(), 200);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'true');
      assert.deepEqual(await lagRows(page), [['0', '1', '5', '4'], ['1', '1', '3', '2']]);
    });
    assert.deepEqual(await brokerOffsets(), { [`${TOPIC}:0`]: 1, [`${TOPIC}:1`]: 1 });

    await s.step('delete-group', async () => {
      const button = page.locator('#delete-group-submit');
      assert.equal(await button.isDisabled(), true);
      await page.fill('#delete-group-form input[name=confirm]', 'billin');
      assert.equal(await button.isDisabled(), true, 'disabled for a wrong id');
      await page.fill('#delete-group-form input[name=confirm]', GROUP);
      await Promise.all([page.waitForURL(/\/groups(\?|$)/), button.click()]);
      await textMatching(page.locator('#notice'), new RegExp(GROUP));
      assert.equal(await page.locator(`#groups-table tr[data-group="${GROUP}"]`).count(), 0);
    });
    assert.deepEqual(await brokerOffsets(), {}, 'the broker has no offsets left for the group');
    await waitFor('the group gone from the JSON form', async () => (await s.json(`/groups/${GROUP}`)).status === 404);
  });

  // Preview, then Apply without touching the form, must apply what was previewed: the page
  // comes back from a preview with the topic, strategy and value still chosen. The group id
  // has a space, a slash and a '#', so links and form actions must percent-encode it.
  it('shows a consumer-protocol group: type, epochs, each member\'s current and target assignment', async () => {
    const { page } = s;
    const topic = 'kip848';
    const group = 'kip848-group';
    const created = await s.json('/topics', { method: 'POST', body: { name: topic, partitions: 4 } });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const a = python('groups-kip848-a', ['kip848', s.cluster.bootstrap, group, topic, 'kip-a']);
    await a.line(/^assigned \[0, 1, 2, 3\]$/);
    const b = python('groups-kip848-b', ['kip848', s.cluster.bootstrap, group, topic, 'kip-b']);
    const last = (m) => JSON.parse(m.lines.filter((l) => l.startsWith('assigned ')).at(-1).slice('assigned '.length));
    await waitFor('the two members to split the four partitions', async () => last(a).length === 2 && last(b).length === 2);
    const owned = { 'kip-a': last(a), 'kip-b': last(b) };
    await waitFor('the console to see a reconciled consumer group', async () => {
      const g = (await s.json(`/groups/${group}`)).body.group;
      return g && g.group_type === 'consumer' && g.members.length === 2
        && g.members.every((m) => JSON.stringify(m.assignment) === JSON.stringify(m.target_assignment) && m.assignment.length === 2);
    });
    await s.step('kip848-page', async () => {
      await s.goto(`/groups/${group}`);
      await textMatching(page.locator('#group-summary'), /consumer group \(KIP-848 protocol\).*group epoch \d+ · assignment epoch \d+.*2 member\(s\).*assignor uniform/s);
      const rows = page.locator('#members-table tbody tr');
      assert.equal(await rows.count(), 2);
      for (let i = 0; i < 2; i++) {
        const c = await cells(rows.nth(i));
        const client = c[1];
        assert.ok(client in owned, `client id ${client}`);
        assert.equal(c[3], 'consumer', 'member protocol');
        assert.match(c[4], /^\d+$/, 'member epoch');
        const expected = owned[client].map((p) => `${topic}-${p}`).join(', ');
        assert.equal(c[5], expected, 'current assignment as the member reports it');
        assert.equal(c[6], expected, 'target = current once reconciled');
      }
    });
    await s.step('kip848-list', async () => {
      await s.goto('/groups');
      const c = await cells(page.locator(`#groups-table tr[data-group="${group}"]`));
      assert.equal(c[1], 'Stable');
      assert.equal(c[2], '2', 'members');
      assert.equal(c[8], 'consumer', 'group type');
    });
    assert.equal(await a.leave(), 0);
    assert.equal(await b.leave(), 0);
  });

  it('applies exactly the previewed reset', async () => {
    const { page } = s;
    // An id that needs percent-encoding in links and form actions.
    const group = 'ops team/previewed #1';
    const m = python('groups-member-previewed', ['member', s.cluster.bootstrap, group, TOPIC, JSON.stringify({ 0: 1, 1: 1 })]);
    await m.line(/^committed /);
    assert.equal(await m.leave(), 0);
    await waitFor('the console to see the group with its commits', async () => {
      const g = (await s.json(`/groups/${encodeURIComponent(group)}`)).body.group;
      return g && g.members.length === 0 && g.partitions.filter((p) => p.committed === 1).length === 2;
    });
    await s.step('previewed-latest', async () => {
      await s.goto('/groups');
      await Promise.all([page.waitForURL(/\/groups\/ops/), page.locator(`#groups-table tr[data-group="${group}"] a`).click()]);
      assert.equal(await page.textContent('#group-id'), group);
      await page.selectOption('#reset-offsets-form select[name=topic]', TOPIC);
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'latest');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 200), page.click('#reset-offsets-preview')]);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'false');
      assert.equal(await page.inputValue('#reset-offsets-form select[name=strategy]'), 'latest', 'the form still says latest');
    });
    await s.step('previewed-applied', async () => {
      const [resp] = await applyReset(page);
      assert.equal(resp.status(), 200);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'true');
    });
    const offsetsOf = async () => {
      const p = python('groups-offsets', ['offsets', s.cluster.bootstrap, group]);
      const line = await p.line(/^offsets /);
      await p.exited;
      return JSON.parse(line.slice('offsets '.length));
    };
    assert.deepEqual(await offsetsOf(), { [`${TOPIC}:0`]: END[0], [`${TOPIC}:1`]: END[1] });

    await s.step('previewed-offset-2', async () => {
      await page.selectOption('#reset-offsets-form select[name=strategy]', 'offset');
      await page.fill('#reset-offsets-form input[name=value]', '2');
      await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 200), page.click('#reset-offsets-preview')]);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'false');
      assert.equal(await page.inputValue('#reset-offsets-form select[name=strategy]'), 'offset');
      assert.equal(await page.inputValue('#reset-offsets-form input[name=value]'), '2');
      assert.equal(await page.inputValue('#reset-offsets-form select[name=topic]'), TOPIC);
    });
    await s.step('previewed-offset-2-applied', async () => {
      const [resp] = await applyReset(page);
      assert.equal(resp.status(), 200);
      assert.equal(await page.getAttribute('#reset-plan', 'data-applied'), 'true');
    });
    assert.deepEqual(await offsetsOf(), { [`${TOPIC}:0`]: 2, [`${TOPIC}:1`]: 2 });
  });
});
