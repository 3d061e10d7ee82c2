"""Client quotas (KIP-546 APIs, Kafka's throttling) against real brokers: quotas are set with
`rill quotas` (kafka-configs.sh's form) and read back with it and with kafka-python's own
DescribeClientQuotas; confluent-kafka (librdkafka) producers and consumers measure the
throttling: a producer limited to 1 MB/s gets about 1 MB/s while an unlimited one keeps its
rate, librdkafka's throttle callback sees `throttle_time_ms`, and the broker's metrics show
the throttled client. Quotas live in the metadata log: they survive a whole-cluster restart
a kill -9 of the active controller (metadata changes go on meanwhile) and a restart of
every node.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port, rill_bin, unique_topic, wait_until

MB = 1024 * 1024
RECORD = b"x" * 10_000


def rill_quotas(bootstrap: str, *args: str, output: str = "json"):
    cmd = [rill_bin(), "quotas", "--bootstrap-server", bootstrap, "--output", output, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def described(bootstrap: str) -> dict:
    """{(user, client_id): {key: value}} from `rill quotas --describe --output json`."""
    out = json.loads(rill_quotas(bootstrap, "--describe"))
    found = {}
    for e in out["quotas"] if isinstance(out, dict) else out:
        found[(e.get("user"), e.get("client_id"))] = e["values"]
    return found


def kafka_python_describe(bootstrap: str):
    """Every quota entity through kafka-python's DescribeClientQuotas v0 (its own codec)."""
    from kafka import KafkaAdminClient
    from kafka.protocol.admin import DescribeClientQuotasRequest_v0
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        node = admin._client.least_loaded_node()
        fut = admin._client.send(node, DescribeClientQuotasRequest_v0(components=[], strict=False))
        admin._client.poll(future=fut, timeout_ms=10000)
        assert fut.succeeded(), fut.exception
        r = fut.value
        assert r.error_code == 0, r
        return [([(e, n) for e, n in entity], [(k, v) for k, v in values])
                for entity, values in r.entries]
    finally:
        admin.close()


def create_topic(bootstrap: str, topic: str, partitions: int = 2, rf: int = 1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, rf)])[topic].result(timeout=30)


class Flood(threading.Thread):
    """Produces 10 kB records as fast as the client may, counting acknowledged bytes per
    second and the throttle times librdkafka reports."""

    def __init__(self, bootstrap: str, topic: str, client_id: str):
        super().__init__(daemon=True)
        self.throttles = []
        self.p = Producer({
            "bootstrap.servers": bootstrap, "client.id": client_id, "acks": "1",
            "linger.ms": 5, "batch.size": 64 * 1024,
            "queue.buffering.max.kbytes": 4096,
            "throttle_cb": lambda ev: self.throttles.append(ev.throttle_time),
        })
        self.topic = topic
        self.acked = []  # (monotonic time, bytes)
        self.errors = []
        self.stop_evt = threading.Event()

    def _done(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked.append((time.monotonic(), len(msg.value())))

    def run(self):
        while not self.stop_evt.is_set():
            try:
                self.p.produce(self.topic, RECORD, on_delivery=self._done)
            except BufferError:
                self.p.poll(0.01)
                continue
            self.p.poll(0)
        self.p.flush(30)

    def rate(self, start: float, end: float) -> float:
        return sum(n for t, n in self.acked if start <= t < end) / (end - start)


def test_a_producer_quota_holds_one_client_to_its_rate_and_not_another(broker_factory):
    # Kafka's rate spans quota.window.num windows and lets a client that was quiet burst up
    # to (num - 1) windows' worth, then mutes it until the burst ages out: with the default
    # 11 windows a flooding client moves ~10 MB in one second and ~0.06 MB/s for the next ten
    # (its long-run average is the bound). Two one-second windows keep each burst to one
    # second's worth, so 15 s of measurement see the bound, not where a burst fell.
    broker = broker_factory(1, {"quota.window.num": "2", "quota.window.size.seconds": "1"})
    bootstrap = broker.bootstrap
    topic = unique_topic("quota")
    create_topic(bootstrap, topic)
    rill_quotas(bootstrap, "--alter", "--entity-type", "clients", "--entity-name", "slow",
                "--add-config", f"producer_byte_rate={MB}")
    assert described(bootstrap) == {(None, "slow"): {"producer_byte_rate": MB}}
    # kafka-python's own DescribeClientQuotas reads the same.
    assert kafka_python_describe(bootstrap) == [
        ([("client-id", "slow")], [("producer_byte_rate", float(MB))])]

    # The unlimited producer alone, for its rate without a neighbour.
    fast = Flood(bootstrap, topic, "fast")
    fast.start()
    time.sleep(1)  # warm-up: connections and metadata; the measured window follows
    t0 = time.monotonic()
    time.sleep(4)
    alone = fast.rate(t0, time.monotonic())

    slow = Flood(bootstrap, topic, "slow")
    slow.start()
    # The first second may burst; measure the steady state after it.
    time.sleep(4)
    t1 = time.monotonic()
    time.sleep(15)
    t2 = time.monotonic()
    slow_rate = slow.rate(t1, t2)
    if os.environ.get("RILL_QUOTA_TRACE"):
        base = slow.acked[0][0] if slow.acked else t1
        print("per second:", [round(slow.rate(base + i, base + i + 1) / MB, 2) for i in range(int(t2 - base))])
    fast_rate = fast.rate(t1, t2)
    slow.stop_evt.set()
    fast.stop_evt.set()
    slow.join(60)
    fast.join(60)

    assert not slow.errors and not fast.errors, (slow.errors[:3], fast.errors[:3])
    assert 0.8 * MB <= slow_rate <= 1.2 * MB, f"slow client at {slow_rate / MB:.2f} MB/s"
    # The quota does not touch the unlimited client: never throttled, and far above the
    # slow one's rate. Its rate beside the slow one against alone is reported, not asserted:
    # on a 2-core machine shared by the broker and both clients a debug broker's rate swings
    # between 50 and 450 MB/s from one second to the next (CPU contention, write-back), so
    # two short windows differ by several times whatever the quota does.
    print(f"quota: slow {slow_rate / MB:.2f} MB/s; fast {fast_rate / MB:.1f} MB/s beside it, "
          f"{alone / MB:.1f} MB/s alone")
    assert max(fast.throttles, default=0) == 0, f"the unlimited client was throttled: {fast.throttles[:5]}"
    assert fast_rate > 10 * MB, (
        f"fast client at {fast_rate / MB:.2f} MB/s with the slow one, {alone / MB:.2f} alone")
    assert slow.throttles and max(slow.throttles) > 0, "librdkafka saw no throttle_time_ms"
    assert not any(t > 0 for t in fast.throttles), fast.throttles[:5]

    metrics = urllib.request.urlopen(f"{broker.http_url}/metrics", timeout=10).read().decode()
    throttle_lines = [line for line in metrics.splitlines()
                      if line.startswith("kafka_server_produce_throttle_time{")]
    assert any('client_id="slow"' in line and float(line.rsplit(" ", 1)[1]) > 0
               for line in throttle_lines), throttle_lines
    assert not any('client_id="fast"' in line for line in throttle_lines), throttle_lines
    counted = [line for line in metrics.splitlines()
               if line.startswith('rill_client_quota_throttled_total{quota="produce"}')]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) > 0, counted


def test_a_consumer_quota_throttles_fetches(broker):
    bootstrap = broker.bootstrap
    topic = unique_topic("cquota")
    create_topic(bootstrap, topic, partitions=1)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    total = 8 * MB
    for _ in range(total // len(RECORD)):
        while True:
            try:
                p.produce(topic, RECORD)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    rill_quotas(bootstrap, "--alter", "--entity-type", "clients", "--entity-name", "reader",
                "--add-config", f"consumer_byte_rate={512 * 1024}")
    throttles = []
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                  "client.id": "reader", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False,
                  "throttle_cb": lambda ev: throttles.append(ev.throttle_time)})
    c.subscribe([topic])
    got = 0
    start = time.monotonic()
    deadline = start + 90
    while got < total // len(RECORD) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    elapsed = time.monotonic() - start
    c.close()
    assert got == total // len(RECORD), f"read {got} records in {elapsed:.0f}s"
    # 8 MB at 0.5 MB/s: the first ~5 MB fit the ten-window burst, the rest is paced.
    assert elapsed >= 4, f"8 MB read in {elapsed:.1f}s despite a 0.5 MB/s quota"
    assert throttles and max(throttles) > 0


def start_cluster(broker_factory):
    cports = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(cports))
    nodes = [broker_factory(i + 1, {
        "listeners": f"PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{cports[i]}",
        "controller.quorum.voters": voters,
        "cluster.id": "quota-cluster-test-1",
        "offsets.topic.replication.factor": "3",
        "offsets.topic.num.partitions": "3",
    }, start=False) for i in range(3)]
    def run(n):
        n.start()
        # The broker dies with the thread that started it (PR_SET_PDEATHSIG): keep it.
        threading.Event().wait()

    for n in nodes:
        threading.Thread(target=run, args=(n,), daemon=True).start()
    wait_until(lambda: all(n.kafka_port for n in nodes), 90, "every node to be ready")
    return nodes


def controller_id(bootstrap: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_cluster(request_timeout=20).result(timeout=30).controller.id


def test_quotas_survive_a_controller_failover_and_a_restart(broker_factory):
    nodes = start_cluster(broker_factory)
    everyone = ",".join(n.bootstrap for n in nodes)
    rill_quotas(everyone, "--alter", "--user", "alice", "--client", "app",
                "--add-config", f"producer_byte_rate={MB},request_percentage=50")
    rill_quotas(everyone, "--alter", "--entity-type", "clients", "--entity-default",
                "--add-config", f"consumer_byte_rate={2 * MB}")
    want = {("alice", "app"): {"producer_byte_rate": MB, "request_percentage": 50},
            (None, "<default>"): {"consumer_byte_rate": 2 * MB}}
    for n in nodes:
        wait_until(lambda: described(n.bootstrap) == want, 30, f"node {n.node_id} to see quotas")

    # kill -9 the active controller; the others elect one and keep taking changes.
    active = controller_id(everyone)
    victim = next(n for n in nodes if n.node_id == active)
    victim.kill()
    rest = [n for n in nodes if n is not victim]
    survivors = ",".join(n.bootstrap for n in rest)
    wait_until(lambda: controller_id(survivors) != active, 60, "a new active controller")
    rill_quotas(survivors, "--alter", "--user-defaults",
                "--add-config", "request_percentage=200")
    rill_quotas(survivors, "--alter", "--user", "alice", "--client", "app",
                "--delete-config", "request_percentage")
    want = {("alice", "app"): {"producer_byte_rate": MB},
            (None, "<default>"): {"consumer_byte_rate": 2 * MB},
            ("<default>", None): {"request_percentage": 200}}
    for n in rest:
        wait_until(lambda: described(n.bootstrap) == want, 30, f"node {n.node_id} to see quotas")

    # The killed node catches up from the others; then every node restarts in turn and reads
    # them back from its own metadata log.
    victim.start()
    wait_until(lambda: described(victim.bootstrap) == want, 60, "the restarted node to catch up")
    for n in nodes:
        n.restart()
        wait_until(lambda: described(n.bootstrap) == want, 60, f"node {n.node_id} after restart")
