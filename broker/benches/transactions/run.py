#!/usr/bin/env python3
"""Transactions bench: produce throughput of 1 KiB records with librdkafka's transactional
producer (100 and 1,000 records per transaction) against its idempotent, non-transactional
producer (the baseline), side by side in one run against one real `rill-broker` process
(confluent-kafka), and the latency of commit_transaction (p50/p99).

    python3 broker/benches/transactions/run.py [--broker target/release/rill-broker]
        [--records 100000] [--trials 3] [--report target/bench-transactions.md]

Every mode writes to its own fresh topic (one partition, acks=all), modes alternate within
each trial so drift on the machine spreads over all of them, and the report gives medians.
Commit latency is measured around commit_transaction only, after the transaction's records
were flushed (acknowledged): it is EndTxn's round trip, which covers the Prepare record, the
markers and the Complete record. The whole transaction (begin, produce, flush, commit) is
timed too.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

VALUE = os.urandom(1024)


def start(binary: str, data: Path) -> tuple[subprocess.Popen, str]:
    args = [binary, "--override", "http.listener=127.0.0.1:0", "--override", f"log.dirs={data}",
            "--override", "listeners=PLAINTEXT://127.0.0.1:0",
            "--override", "transaction.state.log.num.partitions=5"]
    env = dict(os.environ, RILL_LOG="warn")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    for raw in p.stdout:
        line = raw.decode()
        if line.startswith("rill-broker ready:"):
            m = re.search(r"kafka=(\S+)", line)
            return p, m.group(1)
    raise SystemExit("broker did not start")


def send(p: Producer, topic: str):
    while True:
        try:
            p.produce(topic, VALUE)
            return
        except BufferError:
            p.poll(0.005)


def idempotent(bootstrap: str, topic: str, n: int) -> tuple[float, list[float]]:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 5, "batch.size": 1 << 20, "compression.type": "none",
                  "queue.buffering.max.messages": 1_000_000})
    t0 = time.perf_counter()
    for _ in range(n):
        send(p, topic)
    if p.flush(120) != 0:
        raise SystemExit("idempotent produce did not finish")
    return n / (time.perf_counter() - t0), ([], [])


def transactional(bootstrap: str, topic: str, n: int, per_txn: int, txn_id: str):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "linger.ms": 5, "batch.size": 1 << 20, "compression.type": "none",
                  "queue.buffering.max.messages": 1_000_000})
    p.init_transactions(30)
    commits, txns = [], []
    t0 = time.perf_counter()
    for start in range(0, n, per_txn):
        b0 = time.perf_counter()
        p.begin_transaction()
        for _ in range(min(per_txn, n - start)):
            send(p, topic)
        p.flush(60)
        c0 = time.perf_counter()
        p.commit_transaction(60)
        end = time.perf_counter()
        commits.append((end - c0) * 1000)
        txns.append((end - b0) * 1000)
    return n / (time.perf_counter() - t0), (commits, txns)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=str(REPO / "target" / "release" / "rill-broker"))
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--report", default=str(REPO / "target" / "bench-transactions.md"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        proc, bootstrap = start(args.broker, Path(d))
        try:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            modes = [("idempotent (baseline)", None), ("transactional, 100/txn", 100),
                     ("transactional, 1000/txn", 1000)]
            rates = {m: [] for m, _ in modes}
            commits = {m: [] for m, _ in modes}
            whole = {m: [] for m, _ in modes}
            for trial in range(args.trials):
                for name, per_txn in modes:
                    topic = f"bench-{trial}-{per_txn or 'idem'}"
                    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                        f.result(30)
                    if per_txn is None:
                        rate, lat = idempotent(bootstrap, topic, args.records)
                    else:
                        rate, lat = transactional(bootstrap, topic, args.records, per_txn,
                                                  f"bench-{trial}-{per_txn}")
                    rates[name].append(rate)
                    commits[name].extend(lat[0])
                    whole[name].extend(lat[1])
                    print(f"trial {trial} {name}: {rate:,.0f} records/s", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)

    base = statistics.median(rates["idempotent (baseline)"])
    lines = [
        "# Transactions bench",
        "",
        f"{args.records:,} records of 1 KiB per mode and trial, {args.trials} trials, one "
        "partition, acks=all, confluent-kafka (librdkafka), one rill-broker (release).",
        "",
        "| mode | records/s (median) | vs baseline | commits | commit p50 ms | commit p99 ms "
        "| whole transaction p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, _ in modes:
        r = statistics.median(rates[name])
        c, w = commits[name], whole[name]
        lines.append(
            f"| {name} | {r:,.0f} | {100 * (r - base) / base:+.1f} % | {len(c)} | "
            + (f"{pct(c, 0.5):.2f} | {pct(c, 0.99):.2f} | {pct(w, 0.5):.2f} | "
               f"{pct(w, 0.99):.2f} |" if c else "- | - | - | - |"))
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
