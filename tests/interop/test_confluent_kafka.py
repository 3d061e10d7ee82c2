"""Interop with confluent-kafka (librdkafka), a client nobody here wrote.

No consumer groups yet: the consumer has a group.id (librdkafka wants one) but uses
assign() and never commits.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from conftest import unique_topic, wait_until

COMMON = {
    "socket.timeout.ms": 15000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 1000,
}


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap, "client.id": "rill-interop-admin", **COMMON})


def topic_partitions(a: AdminClient, topic: str):
    md = a.list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return t.partitions


def create_topics(a: AdminClient, topics, timeout: float = 20.0):
    futures = a.create_topics(topics, operation_timeout=10, request_timeout=15)
    for name, f in futures.items():
        assert f.result(timeout=timeout) is None, name  # raises KafkaException on error
    for t in topics:
        wait_until(lambda: (topic_partitions(a, t.topic) or {}).keys() == set(range(t.num_partitions)), 20,
                   f"metadata for {t.topic} with {t.num_partitions} partitions")


def test_idempotent_producer_and_assigned_consumer(broker):
    topic = unique_topic("cf-idem")
    parts = 3
    create_topics(admin(broker), [NewTopic(topic, num_partitions=parts, replication_factor=1)])

    n = 500
    reports = []

    def on_delivery(err, msg):
        reports.append((err, msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()))

    p = Producer({
        "bootstrap.servers": broker.bootstrap,
        "client.id": "rill-interop-idempotent",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        **COMMON,
    })
    produced = defaultdict(list)  # partition -> values in produce order
    for i in range(n):
        part = i % parts
        value = f"value-{i}".encode()
        p.produce(topic, key=f"key-{i}".encode(), value=value, partition=part,
                  headers=[("i", str(i).encode())], on_delivery=on_delivery)
        produced[part].append(value)
        p.poll(0)
    remaining = p.flush(30)
    assert remaining == 0, f"{remaining} messages still in the producer queue after 30s"
    assert len(reports) == n, f"{len(reports)} delivery reports for {n} messages"
    errors = [r for r in reports if r[0] is not None]
    assert not errors, f"{len(errors)} delivery failures, first: {errors[0][0]}"
    acked = defaultdict(list)
    for _, _, part, off, _, value in reports:
        acked[part].append((off, value))
    for part in range(parts):
        # offsets 0..k-1 in produce order: the idempotent producer keeps per-partition order
        assert sorted(acked[part]) == [(o, v) for o, v in enumerate(produced[part])], part

    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "client.id": "rill-interop-consumer",
        "group.id": "rill-interop-assign-only",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        **COMMON,
    })
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(parts)])
        got = defaultdict(list)
        total = 0
        deadline = time.monotonic() + 30
        while total < n:
            assert time.monotonic() < deadline, f"consumed {total} of {n} in 30s"
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, f"consumer error: {msg.error()}"
            got[msg.partition()].append((msg.offset(), msg.value()))
            total += 1
            assert msg.headers() == [("i", msg.key()[len("key-"):])], msg.headers()
        assert total == n
        for part in range(parts):
            assert got[part] == [(o, v) for o, v in enumerate(produced[part])], part
        for part in range(parts):
            low, high = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
            assert (low, high) == (0, len(produced[part])), part
    finally:
        c.close()


def test_admin_create_describe_configs_delete(broker):
    a = admin(broker)
    topic = unique_topic("cf-admin")
    create_topics(a, [NewTopic(topic, num_partitions=2, replication_factor=1,
                               config={"retention.ms": "3600000", "cleanup.policy": "delete"})])
    parts = topic_partitions(a, topic)
    for pid, pm in parts.items():
        assert pm.leader == 1 and list(pm.replicas) == [1] and list(pm.isrs) == [1], (pid, pm)

    # creating it again fails with TOPIC_ALREADY_EXISTS
    f = a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], request_timeout=15)[topic]
    exc = f.exception(timeout=20)
    assert exc is not None and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, exc

    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = a.describe_configs([res], request_timeout=15)[res].result(timeout=20)
    assert configs["retention.ms"].value == "3600000", configs["retention.ms"]
    assert not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete"
    assert "segment.bytes" in configs, sorted(configs)
    assert configs["segment.bytes"].is_default, configs["segment.bytes"]

    futures = a.delete_topics([topic], operation_timeout=10, request_timeout=15)
    assert futures[topic].result(timeout=20) is None
    wait_until(lambda: topic not in a.list_topics(timeout=10).topics, 20, f"{topic} to disappear from metadata")


def _consume_all(broker, topic: str, parts: int, n: int, timeout: float = 30.0):
    c = Consumer({
        "bootstrap.servers": broker.bootstrap,
        "client.id": "rill-interop-consumer",
        "group.id": "rill-interop-assign-only",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        **COMMON,
    })
    got = defaultdict(list)
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(parts)])
        total = 0
        deadline = time.monotonic() + timeout
        while total < n:
            assert time.monotonic() < deadline, f"consumed {total} of {n} in {timeout:.0f}s"
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, f"consumer error: {msg.error()}"
            got[msg.partition()].append((msg.offset(), msg.key(), msg.value()))
            total += 1
    finally:
        c.close()
    return got


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_compression_codec_round_trip(broker, codec):
    topic = unique_topic(f"cf-{codec}")
    create_topics(admin(broker), [NewTopic(topic, num_partitions=1, replication_factor=1)])
    n = 300
    values = [(f"{codec} payload {i} " * (1 + i % 9)).encode() for i in range(n)]
    errors = []
    p = Producer({
        "bootstrap.servers": broker.bootstrap,
        "client.id": f"rill-interop-{codec}",
        "compression.type": codec,
        "linger.ms": 20,
        "acks": "all",
        **COMMON,
    })
    for i, v in enumerate(values):
        p.produce(topic, key=f"k{i}".encode(), value=v, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    assert p.flush(30) == 0, "messages left in the producer queue after 30s"
    assert errors == [], errors[:3]

    got = _consume_all(broker, topic, 1, n)
    assert got[0] == [(i, f"k{i}".encode(), values[i]) for i in range(n)]


@pytest.mark.parametrize("one_per_batch", [False, True], ids=["one-batch", "batch-size-1"])
def test_keyless_records_on_a_compacted_topic_fail_alone(broker, one_per_batch):
    """librdkafka's 0011 scenario (KIP-467): 100 records to a compacted topic, every tenth
    without a key. In one batch, the broker names the ten keyless records in record_errors, so
    librdkafka fails those with INVALID_RECORD and the other 90 with
    _INVALID_DIFFERENT_RECORD; one record per batch, the 90 keyed records are stored."""
    topic = unique_topic("cf-kip467")
    create_topics(admin(broker), [NewTopic(topic, num_partitions=1, replication_factor=1,
                                           config={"cleanup.policy": "compact"})])
    invalid_different = getattr(KafkaError, "_INVALID_DIFFERENT_RECORD", -138)
    outcome = {}

    def on_delivery(err, msg):
        i = int(msg.value().decode().split("#")[1])
        outcome[i] = None if err is None else err.code()

    conf = {
        "bootstrap.servers": broker.bootstrap,
        "client.id": "rill-interop-kip467",
        "linger.ms": 1000,
        "batch.num.messages": 1000,
        **COMMON,
    }
    if one_per_batch:
        conf["batch.size"] = 1
    p = Producer(conf)
    for i in range(100):
        key = None if i % 10 == 0 else f"k{i}".encode()
        p.produce(topic, key=key, value=f"record #{i}".encode(), partition=0, on_delivery=on_delivery)
    assert p.flush(30) == 0
    assert len(outcome) == 100
    keyless = {i for i in range(100) if i % 10 == 0}
    assert {i for i, e in outcome.items() if e == KafkaError.INVALID_RECORD} == keyless, outcome
    others = {outcome[i] for i in range(100) if i not in keyless}
    assert others == ({None} if one_per_batch else {invalid_different}), others
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "rill-interop-kip467", **COMMON})
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()
    assert (low, high) == (0, 90 if one_per_batch else 0)


def test_message_format_version_is_accepted_and_ignored(broker):
    """librdkafka's 0092 sets message.format.version on a topic mid-run (AlterConfigs); Kafka
    3.x accepts and ignores it, so does Rill: records stay readable, in batch format v2."""
    a = admin(broker)
    topic = unique_topic("cf-msgfmt")
    create_topics(a, [NewTopic(topic, num_partitions=1, replication_factor=1,
                               config={"message.format.version": "2.8-IV1"})])
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"message.format.version": "0.10.0.0"})
    assert a.alter_configs([res], request_timeout=15)[res].result(timeout=20) is None
    configs = a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)],
                                 request_timeout=15)
    got = list(configs.values())[0].result(timeout=20)
    assert got["message.format.version"].value == "0.10.0.0"
    bad = ConfigResource(ResourceType.TOPIC, topic, set_config={"message.format.version": "ten"})
    exc = a.alter_configs([bad], request_timeout=15)[bad].exception(timeout=20)
    assert exc is not None and exc.args[0].code() == KafkaError.INVALID_CONFIG, exc
    p = Producer({"bootstrap.servers": broker.bootstrap, **COMMON})
    for i in range(10):
        p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=0)
    assert p.flush(30) == 0
    assert [v for _, _, v in _consume_all(broker, topic, 1, 10)[0]] == [f"v{i}".encode() for i in range(10)]
