"""Interop with kafka-python (a pure-Python client nobody here wrote).

Each test starts its own broker; no consumer groups (group_id=None, manual assignment).
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
import kafka.errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from conftest import unique_topic, wait_until

CLIENT_TIMEOUTS = dict(
    request_timeout_ms=15000,
    api_version_auto_timeout_ms=10000,
    reconnect_backoff_ms=50,
    reconnect_backoff_max_ms=1000,
)


def admin_client(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="rill-interop-admin", **CLIENT_TIMEOUTS)


def producer(broker, **kw) -> KafkaProducer:
    conf = dict(bootstrap_servers=broker.bootstrap, client_id="rill-interop-producer", acks="all",
                retries=5, max_block_ms=15000, **CLIENT_TIMEOUTS)
    conf.update(kw)
    return KafkaProducer(**conf)


def consumer(broker, **kw) -> KafkaConsumer:
    conf = dict(bootstrap_servers=broker.bootstrap, client_id="rill-interop-consumer", group_id=None,
                enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
                **CLIENT_TIMEOUTS)
    conf.update(kw)
    return KafkaConsumer(**conf)


def create_topic(broker, topic: str, partitions: int, configs=None) -> None:
    admin = admin_client(broker)
    try:
        resp = admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})], timeout_ms=10000)
        errors = [(name, code, *rest) for (name, code, *rest) in resp.topic_errors]
        assert errors and all(code == 0 for (_, code, *_) in errors), f"CreateTopics {topic}: {errors}"
    finally:
        admin.close()
    wait_for_partitions(broker, topic, partitions)


def wait_for_partitions(broker, topic: str, partitions: int) -> None:
    """Poll Metadata until clients see `topic` with exactly `partitions` partitions.

    (Uses a plain consumer's Metadata request; the admin client's describe_topics is
    tested on its own in test_admin_creates_topic_with_three_partitions.)
    """
    c = consumer(broker)
    try:
        def ready():
            return topic in c.topics() and c.partitions_for_topic(topic) == set(range(partitions))
        wait_until(ready, 20, f"metadata to show {topic} with {partitions} partitions", interval=0.1)
    finally:
        c.close()


def send_all(p: KafkaProducer, records, timeout: float = 30.0):
    """Send (topic, key, value, headers, partition, timestamp_ms) tuples; return RecordMetadata list."""
    futures = [
        p.send(topic, key=key, value=value, headers=headers, partition=partition, timestamp_ms=ts)
        for (topic, key, value, headers, partition, ts) in records
    ]
    p.flush(timeout=timeout)
    metas = []
    for i, f in enumerate(futures):
        assert f.is_done, f"record {i} not acknowledged after flush"
        metas.append(f.get(timeout=0))  # raises the delivery error if any
    return metas


def consume_exactly(c: KafkaConsumer, expected: int, timeout: float = 30.0):
    """Poll until `expected` records arrived; assert none is duplicated. Returns them."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected:
        assert time.monotonic() < deadline, f"consumed only {len(got)} of {expected} records in {timeout:.0f}s"
        for recs in c.poll(timeout_ms=500).values():
            got.extend(recs)
    keys = [(r.topic, r.partition, r.offset) for r in got]
    assert len(keys) == len(set(keys)), "duplicate records consumed"
    assert len(got) == expected, f"consumed {len(got)} records, expected exactly {expected}"
    return got


def assigned_from_beginning(broker, topic: str, partitions: int) -> KafkaConsumer:
    c = consumer(broker)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    return c


# --------------------------------------------------------------------------------------


def test_admin_creates_topic_with_three_partitions(broker):
    topic = unique_topic("kp-admin")
    admin = admin_client(broker)
    try:
        resp = admin.create_topics([NewTopic(topic, 3, 1)], timeout_ms=10000)
        assert [(t[0], t[1]) for t in resp.topic_errors] == [(topic, 0)], resp
        wait_until(lambda: topic in admin.list_topics(), 20, f"{topic} in the topic list")
        [desc] = admin.describe_topics([topic])
        assert desc["error_code"] == 0, desc
        parts = sorted(desc["partitions"], key=lambda p: p["partition"])
        assert [p["partition"] for p in parts] == [0, 1, 2]
        for p in parts:
            assert p["error_code"] == 0, p
            assert p["leader"] == broker.node_id, p
            assert p["replicas"] == [broker.node_id], p
            assert p["isr"] == [broker.node_id], p

        # Creating it again must fail with TOPIC_ALREADY_EXISTS (36); kafka-python raises it.
        with pytest.raises(kafka.errors.TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, 3, 1)], timeout_ms=10000)
    finally:
        admin.close()


def test_produce_and_consume_1000_records_with_keys_headers_and_nulls(broker):
    topic = unique_topic("kp-1000")
    create_topic(broker, topic, 3)
    n = 1000
    sent = []
    for i in range(n):
        key = f"key-{i}".encode()
        value = None if i % 17 == 3 else f"value-{i}-".encode() + bytes([i % 256]) * (i % 50)
        headers = [("idx", str(i).encode()), ("client", b"kafka-python")]
        if i % 5 == 0:
            headers.append(("empty", b""))
        sent.append((topic, key, value, headers, None, None))

    p = producer(broker, linger_ms=5)
    try:
        metas = send_all(p, sent)
    finally:
        p.close(timeout=10)

    assert all(m.topic == topic for m in metas)
    by_pos = {}
    counts = defaultdict(int)
    for rec, meta in zip(sent, metas):
        assert meta.offset >= 0, meta
        by_pos[(meta.partition, meta.offset)] = rec
        counts[meta.partition] += 1
    assert len(by_pos) == n, "two acknowledged records share a (partition, offset)"
    assert set(counts) == {0, 1, 2}, f"keys did not spread over all partitions: {dict(counts)}"
    for part, cnt in counts.items():  # offsets handed out per partition are exactly 0..cnt-1
        assert sorted(o for (pp, o) in by_pos if pp == part) == list(range(cnt)), part

    c = assigned_from_beginning(broker, topic, 3)
    try:
        got = consume_exactly(c, n)
        for r in got:
            _, key, value, headers, _, _ = by_pos[(r.partition, r.offset)]
            assert r.key == key, (r.partition, r.offset)
            assert r.value == value, (r.partition, r.offset)
            assert list(r.headers) == headers, (r.partition, r.offset)
        # per partition, offsets arrive in order
        per_part = defaultdict(list)
        for r in got:
            per_part[r.partition].append(r.offset)
        for part, offs in per_part.items():
            assert offs == sorted(offs) == list(range(counts[part])), part

        tps = [TopicPartition(topic, p) for p in range(3)]
        assert c.end_offsets(tps) == {TopicPartition(topic, p): counts[p] for p in range(3)}
        assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
        for tp in tps:
            assert c.position(tp) == counts[tp.partition], tp
    finally:
        c.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codec_round_trip(broker, codec):
    topic = unique_topic(f"kp-{codec}")
    create_topic(broker, topic, 1)
    n = 300
    values = [(f"{codec} record {i} " * (1 + i % 7)).encode() for i in range(n)]
    records = [(topic, f"k{i}".encode(), values[i], [("codec", codec.encode())], 0, None) for i in range(n)]
    p = producer(broker, compression_type=codec, linger_ms=20, batch_size=16384)
    try:
        metas = send_all(p, records)
    finally:
        p.close(timeout=10)
    assert [m.offset for m in metas] == list(range(n))

    c = assigned_from_beginning(broker, topic, 1)
    try:
        got = consume_exactly(c, n)
        assert [r.offset for r in got] == list(range(n))
        assert [r.value for r in got] == values
        assert [r.key for r in got] == [f"k{i}".encode() for i in range(n)]
        assert all(list(r.headers) == [("codec", codec.encode())] for r in got)
        assert c.end_offsets([TopicPartition(topic, 0)]) == {TopicPartition(topic, 0): n}
    finally:
        c.close()


def test_offsets_for_times(broker):
    topic = unique_topic("kp-times")
    create_topic(broker, topic, 1)
    base = (int(time.time() * 1000) // 1000) * 1000 - 60_000  # a minute ago, whole second
    n = 10
    records = [(topic, f"k{i}".encode(), f"v{i}".encode(), [], 0, base + i * 1000) for i in range(n)]
    p = producer(broker, linger_ms=0)
    try:
        # one request per record so each lands in its own batch, and one batch with many
        metas = []
        for rec in records[:5]:
            metas += send_all(p, [rec])
        metas += send_all(p, records[5:])
    finally:
        p.close(timeout=10)
    assert [m.offset for m in metas] == list(range(n))

    tp = TopicPartition(topic, 0)
    c = consumer(broker)
    try:
        res = c.offsets_for_times({tp: base - 5000})
        assert (res[tp].offset, res[tp].timestamp) == (0, base), res
        res = c.offsets_for_times({tp: base + 3500})
        assert (res[tp].offset, res[tp].timestamp) == (4, base + 4000), res
        res = c.offsets_for_times({tp: base + 7000})
        assert (res[tp].offset, res[tp].timestamp) == (7, base + 7000), res
        res = c.offsets_for_times({tp: base + n * 1000 + 1})
        assert res[tp] is None, res

        c.assign([tp])
        c.seek_to_beginning(tp)
        got = consume_exactly(c, n)
        assert [r.timestamp for r in got] == [base + i * 1000 for i in range(n)]
        assert all(r.timestamp_type == 0 for r in got), "expected CreateTime timestamps"
    finally:
        c.close()


def test_auto_creates_topic_on_produce(broker):
    topic = unique_topic("kp-auto")
    p = producer(broker)
    try:
        metas = send_all(p, [(topic, b"k", f"v{i}".encode(), [], None, None) for i in range(5)])
    finally:
        p.close(timeout=10)
    assert [(m.partition, m.offset) for m in metas] == [(0, i) for i in range(5)]
    c = assigned_from_beginning(broker, topic, 1)
    try:
        assert c.partitions_for_topic(topic) == {0}, "auto-created topic should have num.partitions=1"
        got = consume_exactly(c, 5)
        assert [r.value for r in got] == [f"v{i}".encode() for i in range(5)]
    finally:
        c.close()


def _produce_numbered(broker, topic: str, start: int, count: int, partitions: int):
    p = producer(broker, linger_ms=5)
    try:
        return send_all(p, [(topic, f"k{i}".encode(), f"v{i}".encode(), [], i % partitions, None)
                            for i in range(start, start + count)])
    finally:
        p.close(timeout=10)


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_restart(broker, clean):
    """acks=all records are all readable, exactly once and in order, after a restart on the
    same data dir (SIGTERM, or SIGKILL: the page cache survives a process kill)."""
    topic = unique_topic("kp-restart")
    parts = 2
    create_topic(broker, topic, parts)
    metas = _produce_numbered(broker, topic, 0, 400, parts)
    assert [m.partition for m in metas] == [i % parts for i in range(400)]

    broker.restart(clean=clean)

    wait_for_partitions(broker, topic, parts)
    c = assigned_from_beginning(broker, topic, parts)
    try:
        tps = [TopicPartition(topic, p) for p in range(parts)]
        assert c.end_offsets(tps) == {tp: 200 for tp in tps}
        got = consume_exactly(c, 400)
        for part in range(parts):
            vals = [r.value for r in got if r.partition == part]
            assert vals == [f"v{i}".encode() for i in range(part, 400, parts)], part
    finally:
        c.close()

    # the log continues where it stopped
    more = _produce_numbered(broker, topic, 400, 10, parts)
    assert sorted((m.partition, m.offset) for m in more) == sorted(
        [(p, 200 + j) for p in range(parts) for j in range(5)])


def test_a_client_pinned_to_kafka_0_10_is_told_unsupported_version(broker):
    """kafka-python with api_version=(0, 10, 0) sends Produce v2 (message format 1), which
    Kafka 4.0 and Rill no longer store: the answer is UNSUPPORTED_VERSION for the partition,
    a clear error at once, never a dropped connection the client retries until it times out."""
    topic = unique_topic("kp-old")
    admin = admin_client(broker)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    p = producer(broker, api_version=(0, 10, 0), retries=0)
    try:
        started = time.monotonic()
        with pytest.raises(kafka.errors.UnsupportedVersionError):
            p.send(topic, key=b"k", value=b"v", partition=0).get(timeout=20)
        assert time.monotonic() - started < 10, "answered, not timed out"
    finally:
        p.close(timeout=10)
    # Nothing was stored; a current client writes as usual.
    c = assigned_from_beginning(broker, topic, 1)
    try:
        assert c.end_offsets([TopicPartition(topic, 0)])[TopicPartition(topic, 0)] == 0
    finally:
        c.close()
