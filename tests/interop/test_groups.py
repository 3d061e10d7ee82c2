"""Consumer groups with clients nobody here wrote: kafka-python's group consumer and kcat -G."""

from __future__ import annotations

import shutil
import subprocess
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import unique_topic, wait_until

FAST = {"group.initial.rebalance.delay.ms": "0"}
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int | None = None) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for v in values:
            p.send(topic, v, partition=partition)
        p.flush(timeout=30)
    finally:
        p.close()


def consume(c: KafkaConsumer, n: int, timeout: float = 30) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=200).values():
            got.extend(records)
    return got


def test_kafka_python_group_consumer_commits_and_resumes(broker_factory):
    broker = broker_factory(1, overrides=FAST)
    topic = unique_topic("kp-group")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    produce(broker.bootstrap, topic, [f"v{i}".encode() for i in range(100)])

    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="kp-g", auto_offset_reset="earliest", enable_auto_commit=False)
    got = consume(c, 100)
    assert len(got) == 100
    c.commit()
    committed = {p: c.committed(TopicPartition(topic, p)) for p in (0, 1)}
    assert sum(committed.values()) == 100, committed
    c.close()

    # A new member of the same group starts where the group left off.
    produce(broker.bootstrap, topic, [f"w{i}".encode() for i in range(10)], partition=0)
    c2 = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="kp-g", auto_offset_reset="earliest", enable_auto_commit=False)
    more = consume(c2, 10)
    assert sorted(r.value for r in more) == sorted(f"w{i}".encode() for i in range(10))
    assert not consume(c2, 1, timeout=1), "nothing before the committed offsets is read again"
    c2.close()


def test_kcat_balanced_consumer_consumes_and_commits(broker_factory):
    assert KCAT, "kcat not installed (scripts/test.sh installs it)"
    broker = broker_factory(1, overrides=FAST)
    topic = unique_topic("kcat-group")
    subprocess.run([KCAT, "-b", broker.bootstrap, "-P", "-t", topic], input="\n".join(f"line-{i}" for i in range(50)).encode() + b"\n", check=True, timeout=60)

    def kcat_group():
        proc = subprocess.run(
            [KCAT, "-b", broker.bootstrap, "-G", "kcat-g", "-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100", "-e", "-q", topic],
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        return proc.stdout.decode().splitlines()

    assert kcat_group() == [f"line-{i}" for i in range(50)]
    # kcat committed on exit: the group's offset is visible to another client.
    probe = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="kcat-g", enable_auto_commit=False)
    wait_until(lambda: probe.committed(TopicPartition(topic, 0)) == 50, 20, "kcat's commit to be visible")
    probe.close()
    subprocess.run([KCAT, "-b", broker.bootstrap, "-P", "-t", topic], input=b"late\n", check=True, timeout=60)
    assert kcat_group() == ["late"], "a second run resumes from the committed offset"
