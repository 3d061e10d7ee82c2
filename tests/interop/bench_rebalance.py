"""How long partitions go unowned while a group scales out, per rebalance protocol.

    python3 tests/interop/bench_rebalance.py [ROUNDS] [--modes eager,cooperative,consumer]

Starts one rill-broker ($RILL_BROKER_BIN or target/debug/rill-broker) on ephemeral ports, a
12-partition topic and a producer, then for each mode -- classic eager (range), classic
cooperative-sticky, and KIP-848 (group.protocol=consumer) -- scales a fresh group from 1 to 6
consumers, one at a time, waiting each time until every partition is owned by exactly one
member with a fair share; ROUNDS times (default 3) while the mode's time budget lasts.

Per scale step it measures, for every partition that had an owner, how long it was unowned:
from its revocation (the old owner's on_revoke) to on_assign on its next owner (for eager,
every partition is revoked, also those that come back to the same member); and the step's
total time, from starting the new member to the last on_assign. Partitions first assigned
(the 0 -> 1 step) are skipped. Prints a Markdown report and writes it to
target/bench/rebalance.md. Not collected by pytest (the name does not start with test_).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import REPO_ROOT, BrokerProcess, broker_binary, unique_topic  # noqa: E402
from test_consumer_protocol import (BROKER_OVERRIDES, PARTITIONS, Feeder, Ledger, Member,  # noqa: E402
                                    all_tps, api_versions, create_topics, member_config,
                                    API_CONSUMER_GROUP_HEARTBEAT)

MODES = {
    "eager": ("classic eager (range)", {"protocol": "classic", "strategy": "range"}),
    "cooperative": ("classic cooperative-sticky", {"protocol": "classic", "strategy": "cooperative-sticky"}),
    "consumer": ("KIP-848 consumer (uniform)", {"protocol": "consumer"}),
}
MAX_MEMBERS = 6
MODE_BUDGET_S = 80  # rounds start only while the mode has this much time left in total
STEP_TIMEOUT_S = 60
REPORT = REPO_ROOT / "target" / "bench" / "rebalance.md"


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))]


def wait(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def one_round(bootstrap: str, topic: str, mode: dict, tag: str):
    """Scales a new group 1 -> MAX_MEMBERS. Returns {step: (total_s, [unowned_s, ...])}, or
    raises RuntimeError when a step does not settle."""
    ledger = Ledger()
    group = unique_topic(f"bench-{tag}")
    tps = all_tps(topic)
    members, names, steps = [], [], {}
    try:
        for k in range(1, MAX_MEMBERS + 1):
            name = f"{tag}-m{k}"
            conf = member_config(bootstrap, group, name, protocol=mode["protocol"],
                                 strategy=mode.get("strategy", "cooperative-sticky"))
            start = time.monotonic()
            members.append(Member(name, conf, [topic], ledger, commit=True).start())
            names.append(name)
            if not wait(lambda: ledger.balanced(names, tps), STEP_TIMEOUT_S):
                raise RuntimeError(f"{k} members did not settle in {STEP_TIMEOUT_S}s: "
                                   f"{ledger.describe_ownership(names)}; errors {ledger.errors[-3:]}")
            # Let late callbacks land (a balanced view is final for these assignors).
            time.sleep(0.05)
            events = [e for e in ledger.snapshot_events() if e[0] >= start]
            assigns = [e for e in events if e[3] == "assign" and e[4]]
            last_assign = max((e[0] for e in assigns), default=start)
            unowned = []
            for i, (t0, _t1, _m, kind, parts) in enumerate(events):
                if kind != "revoke":
                    continue
                for tp in parts:
                    nxt = next((a for a in events[i + 1:] if a[3] == "assign" and tp in a[4]), None)
                    if nxt is not None:
                        unowned.append(nxt[0] - t0)
            if k > 1:
                steps[f"{k - 1}->{k}"] = (last_assign - start, unowned)
    finally:
        for m in members:
            m.loop.stop_evt.set()
        for m in members:
            m.join(timeout=60)
    return steps


def main(argv):
    rounds = 3
    modes = list(MODES)
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--modes":
            modes = args.pop(0).split(",")
        else:
            rounds = int(a)
    started = time.monotonic()
    results = {}  # mode -> [per round {step: (total s, [unowned s])}]
    notes = {}
    with tempfile.TemporaryDirectory() as d:
        b = BrokerProcess(1, Path(d) / "data", Path(d), BROKER_OVERRIDES).start()
        try:
            topic = "bench-rebalance"
            create_topics(b.bootstrap, {topic: PARTITIONS})
            feeder = Feeder(b.bootstrap, topic, interval=0.005)
            feeder.start()
            kip848 = API_CONSUMER_GROUP_HEARTBEAT in api_versions(b.bootstrap)
            for mode in modes:
                label, spec = MODES[mode]
                if spec["protocol"] == "consumer" and not kip848:
                    notes[mode] = "not measured: the broker does not advertise ConsumerGroupHeartbeat"
                    continue
                mode_start = time.monotonic()
                done = 0
                for r in range(rounds):
                    spent = time.monotonic() - mode_start
                    if r > 0 and spent + spent / r > MODE_BUDGET_S:
                        break
                    try:
                        steps = one_round(b.bootstrap, topic, spec, f"{mode}{r}")
                    except RuntimeError as e:
                        notes[mode] = f"round {r + 1} failed: {e}"
                        break
                    results.setdefault(mode, []).append(steps)
                    done += 1
                notes.setdefault(mode, f"{done} round(s), {time.monotonic() - mode_start:.0f}s")
                print(f"{label}: {notes[mode]}", file=sys.stderr)
            feeder.abort()
            feeder.join(timeout=10)
        finally:
            b.stop()

    step_names = [f"{k - 1}->{k}" for k in range(2, MAX_MEMBERS + 1)]
    shown = [m for m in modes if m in results]
    lines = [
        "# Rebalance: unowned time per partition while scaling 1 -> 6 consumers",
        "",
        f"One rill-broker ({broker_binary()}), a {PARTITIONS}-partition topic with a producer running, "
        f"confluent-kafka/librdkafka consumers committing synchronously per batch and in on_revoke. "
        f"Classic members: session.timeout.ms=6000, heartbeat.interval.ms=500; consumer "
        f"protocol: group.consumer.heartbeat.interval.ms=500. Unowned: revoke callback on the old "
        f"owner to assign callback on the next owner, over every moved (eager: every) partition. "
        f"Step: new member started to the step's last assign callback (median over rounds).",
        "",
        "| step | " + " | ".join(f"{MODES[m][0]}: step s / unowned p50 / p99 ms (n)" for m in shown) + " |",
        "| --- | " + " | ".join("---" for _ in shown) + " |",
    ]
    for step in step_names:
        cells = []
        for m in shown:
            runs = [r[step] for r in results[m] if step in r]
            totals = [t for t, _ in runs]
            un = [u for _, us in runs for u in us]
            cells.append(f"{statistics.median(totals):.2f} / {pct(un, 50) * 1000:.0f} / "
                         f"{pct(un, 99) * 1000:.0f} ({len(un)})" if runs else "-")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    cells = []
    for m in shown:
        per_round = [sum(t for t, _ in r.values()) for r in results[m]]
        un = [u for r in results[m] for _, us in r.values() for u in us]
        cells.append(f"{statistics.median(per_round):.2f} / {pct(un, 50) * 1000:.0f} / "
                     f"{pct(un, 99) * 1000:.0f} ({len(un)})")
    if shown:
        lines.append("| whole 1 -> 6 | " + " | ".join(cells) + " |")
    lines.append("")
    for m in modes:
        lines.append(f"- {MODES[m][0]}: {notes.get(m, 'not run')}")
    lines.append(f"- total runtime {time.monotonic() - started:.0f}s")
    report = "\n".join(lines) + "\n"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)
    print(report)
    print(f"(written to {REPORT})")


if __name__ == "__main__":
    main(sys.argv[1:])
