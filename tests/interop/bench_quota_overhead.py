"""Produce throughput with a client quota configured but never hit, against no quota, in one
run on one broker (alternating rounds, so drift on a shared machine hits both alike).

    python3 tests/interop/bench_quota_overhead.py [ROUNDS] [SECONDS]

Starts a rill-broker ($RILL_BROKER_BIN or target/debug|release) on ephemeral ports, produces
1 kB records with confluent-kafka (acks=1, linger 5 ms) for SECONDS per round, and prints a
Markdown table of records/s per round and the medians. The quota round sets
producer_byte_rate=1e12 for the producer's client id with `rill quotas` (so every request is
measured and checked) and removes it after.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from conftest import BrokerProcess  # noqa: E402
from test_quotas import rill_quotas  # noqa: E402


def rate(bootstrap: str, topic: str, seconds: float) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "client.id": "bench", "acks": "1",
                  "linger.ms": 5})
    value = b"v" * 1000
    acked = [0]

    def done(err, _msg):
        if err is None:
            acked[0] += 1

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            p.produce(topic, value, on_delivery=done)
        except BufferError:
            p.poll(0.001)
        p.poll(0)
    p.flush(60)
    return acked[0] / (time.monotonic() - start)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as d:
        b = BrokerProcess(1, Path(d) / "data", Path(d)).start()
        try:
            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            admin.create_topics([NewTopic("bench", 1, 1)])["bench"].result(timeout=30)
            rate(b.bootstrap, "bench", 2)  # warm-up
            none, quota = [], []
            for _ in range(rounds):
                none.append(rate(b.bootstrap, "bench", seconds))
                rill_quotas(b.bootstrap, "--alter", "--client", "bench",
                            "--add-config", "producer_byte_rate=1000000000000")
                quota.append(rate(b.bootstrap, "bench", seconds))
                rill_quotas(b.bootstrap, "--alter", "--client", "bench",
                            "--delete-config", "producer_byte_rate")
        finally:
            b.stop()
    print("| round | no quota (rec/s) | quota set, not hit (rec/s) |")
    print("| --- | --- | --- |")
    for i, (a, q) in enumerate(zip(none, quota)):
        print(f"| {i + 1} | {a:,.0f} | {q:,.0f} |")
    mn, mq = statistics.median(none), statistics.median(quota)
    print(f"| median | {mn:,.0f} | {mq:,.0f} ({(mq / mn - 1) * 100:+.1f} %) |")


if __name__ == "__main__":
    main()
