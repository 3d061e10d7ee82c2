// Partition reassignment through the console's /reassign page in Chromium, against a
// 3-node rill-broker cluster and `rill console`: an RF-2 topic with 2 partitions is
// created through the topic form and filled by kcat (6 MB a partition, random so nothing
// compresses it); a balanced plan onto a broker pair no partition has yet is generated,
// dry-run (notice, nothing changed) and executed with a 1 MB/s throttle, so the copy lasts
// several seconds; the page (polling once a second) shows it in progress below 100 %, then
// every partition complete at 100 % and the run completed. The console's JSON then has
// the new replicas, in sync, with the throttles removed, and kcat reads back every record
// produced. A second plan at 10 kB/s (it cannot finish) is cancelled from the page: the
// replicas go back to what they were and the throttles are removed; a cancel with nothing in
// flight is refused. The audit log has both runs.
// Screenshots: tests/artifacts/browser/reassign-NN-*.png.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startStack, textMatching, waitFor } from './lib/console.mjs';

const TOPIC = 'moving';
const PARTITIONS = 2;
// 6000 records of ~1 kB a partition: at FAST_THROTTLE (the follower's and the leader's
// rate, per broker) the copy of one partition takes about 5 s, more when both partitions
// are copied by the same broker; at SLOW_THROTTLE it cannot finish within the test.
const RECORDS_PER_PARTITION = 6000;
const FAST_THROTTLE = 1_000_000;
const SLOW_THROTTLE = 10_000;
// Bound of the waits for a reassignment to finish (12 MB at 1 MB/s, on a loaded machine).
const COPY_WAIT_MS = 120_000;
const THROTTLE_CONFIGS = ['leader.replication.throttled.replicas', 'follower.replication.throttled.replicas'];
const RATE_CONFIGS = ['leader.replication.throttled.rate', 'follower.replication.throttled.rate'];

const sorted = (ids) => [...ids].sort((a, b) => a - b);
const sameSet = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

/** Records `p-i-<1000 random base64 chars>` for partition p, one line each. */
function records(p) {
  return Array.from({ length: RECORDS_PER_PARTITION }, (_, i) => `${p}-${i}-${randomBytes(750).toString('base64')}`);
}

function kcat(args, input) {
  const r = spawnSync('kcat', args, {
    input, encoding: 'utf8', timeout: 120_000, maxBuffer: 256 * 1024 * 1024,
  });
  assert.equal(r.status, 0, `kcat ${args.join(' ')}: ${r.stderr}${r.error ?? ''}`);
  return r.stdout;
}

describe('reassign', () => {
  let s;
  before(async () => { s = await startStack('reassign', { nodes: 3 }); });
  after(async () => { if (s) await s.close(); });

  const topic = async () => (await s.json(`/topics/${TOPIC}`)).body;
  const replicasNow = async () => (await topic()).topic.partitions.map((p) => p.replicas);
  /** Overrides of the throttle configs on the topic and on every broker (empty: none). */
  async function throttleOverrides() {
    const found = [];
    const t = await topic();
    assert.equal(t.configs_error ?? null, null, `topic configs: ${t.configs_error}`);
    for (const c of t.configs) {
      if (THROTTLE_CONFIGS.includes(c.name) && c.value) found.push(`${TOPIC} ${c.name}=${c.value}`);
    }
    for (const id of [1, 2, 3]) {
      const b = (await s.json(`/brokers/${id}`)).body;
      assert.equal(b.error ?? null, null, `broker ${id}: ${b.error}`);
      for (const c of b.configs) {
        if (RATE_CONFIGS.includes(c.name) && c.source === 'DYNAMIC_BROKER_CONFIG') found.push(`broker ${id} ${c.name}=${c.value}`);
      }
    }
    return found;
  }
  /** A pair of brokers that is not the replica set of any partition in `current`. */
  const otherPair = (current) => [[1, 2], [1, 3], [2, 3]].find((pair) => current.every((r) => !sameSet(r, pair)));

  /** Every record of the topic as kcat reads it back, by partition. */
  function consumed() {
    const out = kcat(['-C', '-b', s.cluster.bootstrap, '-t', TOPIC, '-o', 'beginning', '-e', '-q', '-f', '%p %s\n']);
    const by = Array.from({ length: PARTITIONS }, () => []);
    for (const line of out.split('\n').filter(Boolean)) {
      const sp = line.indexOf(' ');
      by[Number(line.slice(0, sp))].push(line.slice(sp + 1));
    }
    return by;
  }

  /** Generates a plan through the form for `brokers` and returns it (from #reassign-plan). */
  async function generate(brokers) {
    const { page } = s;
    await s.goto('/reassign');
    assert.equal(await page.getAttribute('body', 'data-page'), 'reassign');
    const form = page.locator('#reassign-generate-form');
    await form.locator('input[name=topics]').fill(TOPIC);
    await form.locator('input[name=brokers]').fill(brokers.join(','));
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/reassign/plan')),
      page.click('#reassign-generate-submit'),
    ]);
    assert.equal(resp.status(), 200);
    await page.locator('#reassign-current').waitFor();
    const plan = JSON.parse(await page.inputValue('#reassign-plan'));
    assert.equal(plan.partitions.length, PARTITIONS, JSON.stringify(plan));
    for (const m of plan.partitions) {
      assert.equal(m.topic, TOPIC);
      assert.ok(sameSet(m.replicas, brokers), `partition ${m.partition} goes to [${m.replicas}], not [${brokers}]`);
    }
    return plan;
  }

  /** Sets the throttle and clicks Execute; the answer is /reassign with a notice. */
  async function execute(throttle) {
    const { page } = s;
    await page.fill('#reassign-execute-form input[name=throttle]', String(throttle));
    await Promise.all([page.waitForURL(/\/reassign\?notice=/), page.click('#reassign-execute')]);
    await textMatching(page.locator('#notice'), new RegExp(`Started the reassignment of ${PARTITIONS} partition`));
  }

  /** What the page shows now: run status and, per partition, state and percent. */
  async function pageState() {
    const { page } = s;
    const status = await page.getAttribute('#reassign-status', 'data-status', { timeout: 1000 });
    const rows = await page.locator('#reassign-plan-state tr[data-partition]').evaluateAll((rs) => rs.map((r) => ({
      partition: Number(r.dataset.partition),
      state: r.querySelector('td.state').textContent.trim(),
      percent: r.querySelector('td.percent').textContent.trim(),
    })));
    const progress = await page.locator('#reassign-progress tbody tr[data-replica]').evaluateAll((rs) => rs.map((r) => ({
      partition: Number(r.dataset.partition),
      replica: Number(r.dataset.replica),
      percent: Number(r.lastElementChild.textContent.trim()),
    })));
    return { status, rows, progress };
  }

  it('executes a throttled plan to 100 %, then cancels a second one back to the old replicas', async (t) => {
    const { page } = s;
    await waitFor('the console to see three brokers', async () => (await s.json('/')).body.totals?.brokers === 3);

    await s.step('create-rf2', async () => {
      await s.goto('/topics');
      const form = page.locator('#create-topic-form');
      await form.locator('input[name=name]').fill(TOPIC);
      await form.locator('input[name=partitions]').fill(String(PARTITIONS));
      await form.locator('input[name=replication_factor]').fill('2');
      await Promise.all([page.waitForURL(new RegExp(`/topics/${TOPIC}\\?`)), page.click('#create-topic-submit')]);
      await textMatching(page.locator('#topic-summary'), /RF 2/);
    });
    const original = await replicasNow();
    assert.equal(original.length, PARTITIONS);
    assert.ok(original.every((r) => r.length === 2), JSON.stringify(original));

    // Data to copy: kcat, acks=all, one partition at a time.
    const produced = [];
    for (let p = 0; p < PARTITIONS; p++) {
      produced.push(records(p));
      kcat(['-P', '-b', s.cluster.bootstrap, '-t', TOPIC, '-p', String(p), '-X', 'acks=all'], `${produced[p].join('\n')}\n`);
    }
    await waitFor('the console to see every record, in sync', async () => (await topic()).topic.partitions.every(
      (p) => p.latest === RECORDS_PER_PARTITION && p.isr.length === 2));

    // Every partition moves: onto a pair that is no partition's replica set now.
    const target = otherPair(original);
    const plan = await s.step('plan-generated', () => generate(target));

    await s.step('dry-run', async () => {
      const [resp] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/reassign/execute')),
        page.click('#reassign-dry-run'),
      ]);
      assert.equal(resp.status(), 200);
      await textMatching(page.locator('#notice'), new RegExp(`The plan is valid: ${PARTITIONS} partition\\(s\\); nothing was changed`));
      assert.deepEqual(JSON.parse(await page.inputValue('#reassign-plan')), plan, 'the editor keeps the plan');
      assert.equal(await page.getAttribute('#reassign-status', 'data-status'), 'none');
    });
    assert.deepEqual(await replicasNow(), original, 'a dry run changes nothing');
    assert.deepEqual(await throttleOverrides(), [], 'a dry run sets no throttle');

    await s.step('executed', async () => {
      await execute(FAST_THROTTLE);
      await textMatching(page.locator('#reassign-status'), new RegExp(`throttle ${FAST_THROTTLE} B/s`));
    });
    // Throttles are set while the copy runs (rate on the brokers, replicas on the topic).
    const during = await throttleOverrides();
    for (const name of [...THROTTLE_CONFIGS, ...RATE_CONFIGS]) {
      assert.ok(during.some((o) => o.includes(`${name}=`)), `${name} set while copying: ${during}`);
    }

    // Watch the page: in progress below 100 % (the JS updates the percent cells every
    // second), then completed (the JS reloads the page when the run's status changes).
    const seen = [];
    const watch = async (done) => {
      const st = await pageState();
      seen.push({ t: Date.now(), ...st });
      return done(st);
    };
    const moving = (st) => st.status === 'in-progress' && st.rows.length === PARTITIONS
      && st.rows.some((r) => /^\d+$/.test(r.percent) && Number(r.percent) > 0 && Number(r.percent) < 100);
    await s.step('in-progress', async () => {
      await waitFor('a partition part-way copied on the page', () => watch(moving), { timeout: COPY_WAIT_MS, interval: 200 });
      const st = seen.at(-1);
      assert.ok(st.rows.every((r) => r.state === 'in progress'), JSON.stringify(st.rows));
      assert.ok(st.progress.length >= PARTITIONS, `one progress row per adding replica: ${JSON.stringify(st.progress)}`);
      assert.ok(st.progress.some((r) => r.percent < 100), JSON.stringify(st.progress));
    });
    await s.step('completed', async () => {
      await waitFor('the run completed on the page', () => watch((st) => st.status === 'completed'), { timeout: COPY_WAIT_MS, interval: 200 });
      await page.locator('#reassign-status[data-status=completed]').waitFor();
      const st = await pageState();
      assert.deepEqual(st.rows.map((r) => [r.partition, r.state, r.percent]),
        plan.partitions.map((m) => [m.partition, 'complete', '100']));
      assert.deepEqual(st.progress, [], 'nothing in flight');
      const shown = await page.locator('#reassign-plan-state tr[data-partition] td:nth-child(2)').allTextContents();
      assert.deepEqual(shown, plan.partitions.map((m) => m.replicas.join(',')));
    });
    // The percent moved while the page watched: several values below 100 over some seconds.
    const partial = seen.filter((o) => o.status === 'in-progress');
    const values = new Set(partial.flatMap((o) => o.rows.map((r) => r.percent)).filter((v) => /^\d+$/.test(v) && Number(v) < 100));
    assert.ok(values.size >= 2, `progress seen below 100 %: ${[...values]}`);
    const lasted = partial.at(-1).t - partial[0].t;
    t.diagnostic(`${JSON.stringify(original)} -> [${target}]: in progress on the page for ${lasted} ms, percents seen: ${[...values].join(' ')}`);
    assert.ok(lasted >= 2000, `in progress on the page for ${lasted} ms`);

    // Cross-checks: the new replicas in sync, throttles gone, every record readable.
    await waitFor('the console to show the new replicas in sync', async () => (await topic()).topic.partitions.every((p) => {
      const m = plan.partitions.find((x) => x.partition === p.partition);
      return JSON.stringify(p.replicas) === JSON.stringify(m.replicas) && sameSet(p.isr, m.replicas);
    }));
    assert.deepEqual(await throttleOverrides(), [], 'throttles removed once complete');
    const reassignJson = (await s.json('/reassign')).body;
    assert.equal(reassignJson.status, 'completed');
    assert.ok(reassignJson.executed.every((x) => x.percent === 100 && x.state === 'complete'), JSON.stringify(reassignJson.executed));
    let back = consumed();
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(back[p].length, RECORDS_PER_PARTITION, `records read back from partition ${p}`);
      assert.ok(back[p].every((v, i) => v === produced[p][i]), `partition ${p} reads back what was produced, in order`);
    }

    // Cancel: a plan that cannot finish at 10 kB/s, cancelled from the page.
    const before = await replicasNow();
    const target2 = otherPair(before);
    await s.step('cancel-plan-generated', () => generate(target2));
    await s.step('cancel-executed', async () => {
      await execute(SLOW_THROTTLE);
      await textMatching(page.locator('#reassign-status'), new RegExp(`in-progress · throttle ${SLOW_THROTTLE} B/s`));
      // In flight in the cluster: the adding replicas appear in the progress table.
      await waitFor('a progress row per partition', async () => (await pageState()).progress.length >= PARTITIONS);
      const st = await pageState();
      assert.equal(st.status, 'in-progress');
      assert.ok(st.rows.every((r) => r.state === 'in progress'), JSON.stringify(st.rows));
      assert.ok(st.progress.every((r) => r.percent < 100), JSON.stringify(st.progress));
    });
    await s.step('cancel-asks-first', async () => {
      // The first click only shows what the cancel reverts; nothing changes yet.
      await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/reassign/cancel') && r.status() === 200),
        page.click('#reassign-cancel-submit'),
      ]);
      await page.locator('#reassign-cancel-confirm-form').waitFor();
      assert.equal(await page.locator('#reassign-cancel-list li').count(), PARTITIONS);
      assert.equal(await page.getAttribute('#reassign-status', 'data-status'), 'in-progress');
    });
    await s.step('cancelled', async () => {
      await Promise.all([page.waitForURL(/\/reassign\?notice=/), page.click('#reassign-cancel-confirm')]);
      await textMatching(page.locator('#notice'), new RegExp(`Cancelled ${PARTITIONS} reassignment`));
      await page.locator('#reassign-status[data-status=cancelled]').waitFor();
      const st = await pageState();
      assert.ok(st.rows.every((r) => r.state === 'cancelled'), JSON.stringify(st.rows));
    });
    await waitFor('the console to show the old replicas back, in sync', async () => {
      const t = (await topic()).topic;
      return JSON.stringify(t.partitions.map((p) => p.replicas)) === JSON.stringify(before)
        && t.partitions.every((p) => sameSet(p.isr, p.replicas));
    });
    await waitFor('nothing in flight', async () => {
      const r = (await s.json('/reassign')).body;
      return r.status === 'cancelled' && r.progress.length === 0 && !r.progress_error;
    });
    assert.deepEqual(await throttleOverrides(), [], 'throttles removed by the cancel');
    await s.step('cancel-none-refused', async () => {
      // Nothing left in flight: a second cancel is refused with a message, changing nothing.
      await s.goto('/reassign');
      const [resp] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/reassign/cancel')),
        page.click('#reassign-cancel-submit'),
      ]);
      assert.equal(resp.status(), 400);
      await textMatching(page.locator('#reassign-cancel-error'), /no reassignment is in progress/);
      assert.equal(await page.getAttribute('#reassign-status', 'data-status'), 'cancelled');
    });
    await s.step('cancelled-topic', async () => {
      await s.goto(`/topics/${TOPIC}`);
      const shown = await page.locator('#partitions-table tr[data-partition]').evaluateAll((rs) => rs.map((r) => r.children[2].textContent));
      assert.deepEqual(shown.map((t) => t.split(/[^0-9]+/).filter(Boolean).map(Number)), before);
    });
    back = consumed();
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(back[p].length, RECORDS_PER_PARTITION, `records read back from partition ${p} after the cancel`);
    }
    // The audit log has both runs: executed and completed, executed and cancelled (the
    // refused cancel never reached its confirmation, so it changed nothing to audit).
    const actions = (await s.json('/audit')).body.entries
      .filter((e) => e.action.startsWith('reassign-')).map((e) => [e.action, e.ok]).reverse();
    assert.deepEqual(actions, [['reassign-execute', true], ['reassign-completed', true],
      ['reassign-execute', true], ['reassign-cancel', true]]);
  });
});
