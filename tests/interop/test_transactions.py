"""Exactly-once consume-transform-produce over a 3-node cluster, with confluent-kafka's
transactional API (send_offsets_to_transaction) and kafka-python's: the node coordinating the
chain's transactional id and an output partition's leader are killed with -9 mid-run, several
times. The output, read with read_committed, must hold every input record exactly once, nothing
from aborted transactions, in order per key.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port, unique_topic, wait_until

PARTITIONS = 3
KEYS = 12
TXN_STATE_PARTITIONS = 5


def java_hash_partition(s: str, n: int) -> int:
    """Kafka's partition for a transactional id: abs(String.hashCode) % n."""
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (h * 31 + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    return 0 if h == -0x80000000 else abs(h) % n


def leader_node(nodes, topic: str, partition: int):
    """The live node that leads topic/partition, from the nodes' HTTP APIs."""
    for n in nodes:
        if not n.alive():
            continue
        try:
            with urllib.request.urlopen(f"{n.http_url}/api/v1/partitions", timeout=5) as r:
                for p in json.loads(r.read()):
                    if p["topic"] == topic and p["partition"] == partition and p["is_leader"]:
                        return n
        except OSError:
            continue
    return None


def start_cluster(broker_factory):
    cports = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(cports))
    nodes = []
    for i in range(3):
        nodes.append(broker_factory(i + 1, {
            "listeners": f"PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{cports[i]}",
            "controller.quorum.voters": voters,
            "cluster.id": "txn-cluster-test-1",
            "offsets.topic.replication.factor": "3",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": str(TXN_STATE_PARTITIONS),
        }, start=False))

    def run(n):
        n.start()
        threading.Event().wait()

    for n in nodes:
        threading.Thread(target=run, args=(n,), daemon=True).start()
    wait_until(lambda: all(n.kafka_port for n in nodes), 90, "every node to be ready")
    return nodes


def bootstrap_of(nodes) -> str:
    return ",".join(n.bootstrap for n in nodes if n.kafka_port)


class Feeder(threading.Thread):
    """Writes `key:seq` records to the input topic (idempotent, acks=all) until stopped."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.topic = topic
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 5, "message.timeout.ms": 120000})
        self.stop_evt = threading.Event()
        self.acked = 0
        self.errors = []

    def run(self):
        seq = 0
        while not self.stop_evt.is_set():
            for k in range(KEYS):
                key = f"k{k}"
                while True:
                    try:
                        self.p.produce(self.topic, key=key, value=f"{key}:{seq}",
                                       on_delivery=self._delivered)
                        break
                    except BufferError:
                        self.p.poll(0.05)
            seq += 1
            self.p.poll(0)
            time.sleep(0.01)
        self.p.flush(120)
        self.total = seq * KEYS

    def _delivered(self, err, _msg):
        if err:
            self.errors.append(err)
        else:
            self.acked += 1


class Chain(threading.Thread):
    """Reads the input (read_committed), writes `out:<value>` with the same key, and commits the
    input offsets in the same transaction. On an error it aborts (or replaces a fenced
    producer) and rewinds to the group's committed offsets, as an exactly-once app must."""

    def __init__(self, bootstrap: str, source: str, sink: str, group: str, txn_id: str):
        super().__init__(daemon=True)
        self.bootstrap, self.source, self.sink, self.group, self.txn_id = (
            bootstrap, source, sink, group, txn_id)
        self.stop_evt = threading.Event()
        self.committed_txns = 0
        self.aborted_txns = 0
        self.new_producers = 0
        self.failure = None

    def new_producer(self) -> Producer:
        p = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": self.txn_id,
                      "linger.ms": 5, "transaction.timeout.ms": 30000,
                      "message.timeout.ms": 30000})
        deadline = time.monotonic() + 120
        while True:
            try:
                p.init_transactions(30)
                self.new_producers += 1
                return p
            except KafkaException as e:
                if time.monotonic() > deadline or e.args[0].fatal():
                    raise
                time.sleep(0.2)

    def rewind(self, c: Consumer, tps):
        deadline = time.monotonic() + 120
        while True:
            try:
                committed = c.committed(tps, timeout=30)
                break
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        c.assign([TopicPartition(tp.topic, tp.partition,
                                 tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                  for tp in committed])

    def run(self):
        try:
            self._run()
        except Exception as e:  # surfaced by the test
            self.failure = e

    def _run(self):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                      "enable.auto.commit": False, "isolation.level": "read_committed",
                      "auto.offset.reset": "earliest"})
        tps = [TopicPartition(self.source, i) for i in range(PARTITIONS)]
        self.rewind(c, tps)
        p = self.new_producer()
        while not self.stop_evt.is_set():
            msgs = [m for m in c.consume(num_messages=40, timeout=0.3) if not m.error()]
            if not msgs:
                continue
            try:
                p.begin_transaction()
                for m in msgs:
                    while True:
                        try:
                            p.produce(self.sink, key=m.key(), value=b"out:" + m.value())
                            break
                        except BufferError:
                            p.poll(0.05)
                positions = c.position(tps)
                p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 60)
                self.commit(p)
                self.committed_txns += 1
            except KafkaException as e:
                err = e.args[0]
                if err.fatal():
                    p = self.new_producer()
                else:
                    try:
                        p.abort_transaction(60)
                        self.aborted_txns += 1
                    except KafkaException:
                        p = self.new_producer()
                self.rewind(c, tps)
        c.close()

    def commit(self, p: Producer):
        deadline = time.monotonic() + 120
        while True:
            try:
                p.commit_transaction(60)
                return
            except KafkaException as e:
                if e.args[0].retriable() and time.monotonic() < deadline:
                    continue
                raise


def read_committed(bootstrap: str, topic: str, expected: int):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("verify"),
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(PARTITIONS)])
    got, eof = [], set()
    deadline = time.monotonic() + 90
    while (len(eof) < PARTITIONS or len(got) < expected) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
            continue
        eof.discard(m.partition())
        got.append((m.key().decode(), m.value().decode()))
    c.close()
    return got


def check_exactly_once(got, total_per_key):
    by_key = {}
    for key, value in got:
        assert value.startswith("out:"), value
        k, seq = value[4:].split(":")
        assert k == key, (key, value)
        by_key.setdefault(key, []).append(int(seq))
    for k in range(KEYS):
        seqs = by_key.get(f"k{k}", [])
        assert seqs == list(range(total_per_key)), (
            f"k{k}: {len(seqs)} records, expected {total_per_key} in order exactly once; "
            f"first differences: {[(i, s) for i, s in enumerate(seqs) if s != i][:5]}")


def group_caught_up(bootstrap: str, group: str, topic: str) -> bool:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": "read_committed"})
    try:
        tps = [TopicPartition(topic, i) for i in range(PARTITIONS)]
        committed = c.committed(tps, timeout=20)
        for tp in committed:
            _, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=20)
            if tp.offset < high:
                return False
        return True
    except KafkaException:
        return False
    finally:
        c.close()


# Three kill rounds, each waiting out an election: a minute alone, several on a loaded 2-core
# machine.
@pytest.mark.timeout(420)
def test_exactly_once_chain_survives_coordinator_and_leader_kills(broker_factory):
    nodes = start_cluster(broker_factory)
    bootstrap = bootstrap_of(nodes)
    source, sink = unique_topic("eos-in"), unique_topic("eos-out")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([
        NewTopic(t, PARTITIONS, 3, config={"min.insync.replicas": "2"}) for t in (source, sink)
    ]).values():
        f.result(timeout=30)

    feeder = Feeder(bootstrap, source)
    feeder.start()
    txn_id = "eos-chain-1"
    chain = Chain(bootstrap, source, sink, "eos-chain", txn_id)
    chain.start()
    wait_until(lambda: chain.committed_txns >= 5 or chain.failure, 60, "the chain's first commits")

    coordinator_partition = java_hash_partition(txn_id, TXN_STATE_PARTITIONS)
    victims = []
    for round_ in range(3):
        if round_ % 2 == 0:
            victim = wait_until(
                lambda: leader_node(nodes, "__transaction_state", coordinator_partition),
                60, "the transaction coordinator's node")
        else:
            victim = wait_until(lambda: leader_node(nodes, sink, round_ % PARTITIONS), 60,
                                "an output partition's leader")
        before = chain.committed_txns
        victim.kill()
        victims.append(victim.node_id)
        wait_until(lambda: chain.committed_txns >= before + 5 or chain.failure, 90,
                   f"commits after killing node {victim.node_id}")
        victim.start()
        wait_until(lambda: all(n.alive() and n.kafka_port for n in nodes), 60, "the node back")
        assert chain.failure is None, chain.failure

    feeder.stop_evt.set()
    feeder.join(timeout=150)
    assert not feeder.errors, feeder.errors[:3]
    total_per_key = feeder.total // KEYS
    bootstrap = bootstrap_of(nodes)
    wait_until(lambda: chain.failure or group_caught_up(bootstrap, "eos-chain", source), 120,
               "the chain to consume every input record")
    chain.stop_evt.set()
    chain.join(timeout=60)
    assert chain.failure is None, chain.failure

    got = read_committed(bootstrap, sink, feeder.total)
    check_exactly_once(got, total_per_key)
    print(f"exactly-once chain: {feeder.total} records, {chain.committed_txns} transactions "
          f"committed, {chain.aborted_txns} aborted, {chain.new_producers} producer instances, "
          f"nodes killed: {victims}")


def test_kafka_python_transactional_chain(broker):
    """kafka-python 2.3's transactional producer: a consume-transform-produce loop with
    send_offsets_to_transaction, an aborted transaction in between; read_committed sees each
    input once."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP

    bootstrap = broker.bootstrap
    source, sink = unique_topic("kp-in"), unique_topic("kp-out")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in (source, sink)]).values():
        f.result(timeout=30)
    feed = Producer({"bootstrap.servers": bootstrap})
    for i in range(50):
        feed.produce(source, key=b"k", value=str(i).encode())
    feed.flush(30)

    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-chain",
                      api_version_auto_timeout_ms=10000)
    p.init_transactions()
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id="kp-chain",
                      enable_auto_commit=False, isolation_level="read_committed",
                      auto_offset_reset="earliest")
    tp = KTP(source, 0)
    c.assign([tp])
    done, batches = 0, 0
    deadline = time.monotonic() + 60
    while done < 50 and time.monotonic() < deadline:
        records = c.poll(timeout_ms=500, max_records=10).get(tp, [])
        if not records:
            continue
        p.begin_transaction()
        for r in records:
            p.send(sink, key=r.key, value=b"out:" + r.value)
        batches += 1
        if batches == 2:
            # One transaction aborted: its output must never be read, and its input is read
            # again from the committed offset.
            p.abort_transaction()
            committed = c.committed(tp)
            c.seek(tp, committed if committed is not None else 0)
            continue
        from kafka.structs import OffsetAndMetadata
        p.send_offsets_to_transaction({tp: OffsetAndMetadata(records[-1].offset + 1, None, -1)},
                                      "kp-chain")
        p.commit_transaction()
        done = records[-1].offset + 1
    assert done == 50, done
    p.close()
    c.close()

    out = Consumer({"bootstrap.servers": bootstrap, "group.id": "kp-verify",
                    "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                    "enable.partition.eof": True})
    out.assign([TopicPartition(sink, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = out.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                break
            continue
        got.append(m.value().decode())
    out.close()
    assert got == [f"out:{i}" for i in range(50)], got
