"""A secured 3-node cluster: the only Kafka listener is SASL_SSL, so replication, liveness
probes and clients all authenticate over TLS (PLAIN; brokers log in as User:broker, a super
user; ACLs on), and the controllers' quorum runs over mutual TLS (CONTROLLER mapped to SSL
with client certificates required). A leader is killed with -9 while an idempotent producer writes with
acks=all; every acknowledged record is read back exactly once."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import free_port, wait_until
from pki import make_pki

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="broker" password="broker-pw" user_broker="broker-pw" user_app="app-pw";')


def partition(b, topic: str):
    with urllib.request.urlopen(f"{b.http_url}/api/v1/partitions", timeout=5) as r:
        for p in json.loads(r.read()):
            if p["topic"] == topic and p["is_leader"]:
                return p
    return None


def test_sasl_ssl_replication_survives_a_leader_kill(broker_factory, tmp_path):
    pki = make_pki(tmp_path / "pki")
    cports = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(cports))
    nodes = []
    for i in range(3):
        nodes.append(broker_factory(i + 1, {
            "listeners": f"SECURE://127.0.0.1:0,CONTROLLER://127.0.0.1:{cports[i]}",
            "listener.security.protocol.map": "SECURE:SASL_SSL,CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth": "required",
            "inter.broker.listener.name": "SECURE",
            "controller.quorum.voters": voters,
            "cluster.id": "secured-cluster-test-1",
            "ssl.keystore.location": str(pki.server),
            "ssl.truststore.location": str(pki.ca),
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.secure.plain.sasl.jaas.config": JAAS,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:broker;User:app",
            "offsets.topic.replication.factor": "3",
        }, start=False))
    # The quorum forms once all three run: start them together. A child dies with the
    # thread that started it (PR_SET_PDEATHSIG), so those threads stay until the test ends.
    def run(n):
        n.start()
        threading.Event().wait()

    for n in nodes:
        threading.Thread(target=run, args=(n,), daemon=True).start()
    wait_until(lambda: all(n.kafka_port for n in nodes), 90, "every node to be ready")
    bootstrap = ",".join(n.listeners["SECURE"] for n in nodes)
    conf = {
        "bootstrap.servers": bootstrap, "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
        "sasl.username": "app", "sasl.password": "app-pw", "ssl.ca.location": str(pki.ca),
    }
    admin = AdminClient(conf)
    for f in admin.create_topics([NewTopic("secured", 1, 3, config={"min.insync.replicas": "2"})]).values():
        f.result(timeout=30)

    def leader_with_full_isr():
        for n in nodes:
            if n.alive():
                p = partition(n, "secured")
                if p and len(p["isr"]) == 3:
                    return n
        return None

    # Followers can only have joined the ISR by fetching over SASL_SSL.
    leader = wait_until(leader_with_full_isr, 60, "a full ISR over SASL_SSL")

    acked, errors = [], []
    p = Producer({**conf, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 60000})
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            try:
                p.produce("secured", str(i).encode(),
                          on_delivery=lambda e, m: (errors if e else acked).append(e or int(m.value())))
                i += 1
            except BufferError:
                pass
            p.poll(0.001)
        p.flush(60)

    w = threading.Thread(target=write)
    w.start()
    wait_until(lambda: len(acked) > 2000, 30, "writes acknowledged before the kill")
    leader.kill()
    wait_until(lambda: len(acked) > 4000, 60, "writes acknowledged after the kill")
    leader.start()
    wait_until(leader_with_full_isr, 60, "the killed node back in the ISR")
    stop.set()
    w.join(timeout=90)
    assert not errors, errors[:3]

    c = Consumer({**conf, "group.id": "secured-check", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe(["secured"])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < len(acked) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(int(m.value()))
    c.close()
    assert sorted(got) == sorted(acked), (len(got), len(acked))
    assert len(set(got)) == len(got), "no duplicates (idempotent producer)"
    print(f"secured cluster: {len(acked)} records acknowledged, {len(got)} read back, leader {leader.node_id} killed")
