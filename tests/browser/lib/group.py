"""Consumer-group side of the browser tests, with kafka-python (installed by scripts/test.sh
from tests/interop/requirements.txt).

  group.py member BOOTSTRAP GROUP TOPIC '{"0": 1, "1": 2}'
      joins GROUP subscribed to TOPIC, commits the given offsets per partition, prints
      `committed {...}`, stays a member (polling, so it keeps heartbeating) until stdin is
      closed, then leaves the group and exits 0.
  group.py kip848 BOOTSTRAP GROUP TOPIC NAME
      a confluent-kafka consumer of the KIP-848 protocol (group.protocol=consumer) named
      NAME joins GROUP subscribed to TOPIC, prints `assigned [partitions]` whenever its
      assignment changes, and stays until stdin is closed; then leaves and exits 0.
  group.py offsets BOOTSTRAP GROUP
      prints the group's committed offsets as the broker has them:
      `offsets {"TOPIC:PARTITION": offset, ...}`.
  group.py pace BOOTSTRAP GROUP TOPIC START RATE SECONDS
      commits offsets of TOPIC's partition 0 for GROUP (no membership, like a simple
      consumer) from START, advancing RATE per second, every 250 ms for SECONDS; prints
      `paced N` with the last offset committed, then exits 0.
  group.py topics BOOTSTRAP PREFIX COUNT
      creates COUNT topics PREFIX00000.. (1 partition, RF 1) with confluent-kafka's admin
      client, 500 per CreateTopics, and prints `created COUNT`.
  group.py txn BOOTSTRAP TRANSACTIONAL_ID TOPIC TIMEOUT_MS
      a transactional producer (transaction.timeout.ms = TIMEOUT_MS) that opens a
      transaction, writes 3 records to TOPIC's partition 0, prints `open`, and
      leaves the transaction open until stdin is closed; then exits 0 without ending it.
"""

import json
import select
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata


def member(bootstrap, group, topic, offsets):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="browser-test",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    consumer.subscribe([topic])
    # The assignment arrives with the first polls (bounded: the test's own timeout kills us).
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    consumer.commit({
        TopicPartition(topic, int(p)): OffsetAndMetadata(int(o), "", -1)
        for p, o in offsets.items()
    })
    print("committed", json.dumps(offsets), flush=True)
    # Stay a live member until the test closes stdin; poll without consuming progress
    # beyond what was committed (nothing is committed again).
    consumer.pause(*consumer.assignment())
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        if ready and not sys.stdin.read(1):
            break
        consumer.poll(timeout_ms=0)
    consumer.close()
    print("left", flush=True)


def committed(bootstrap, group):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="browser-test")
    try:
        got = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    print("offsets", json.dumps({f"{tp.topic}:{tp.partition}": om.offset for tp, om in sorted(got.items())}), flush=True)


def pace(bootstrap, group, topic, start, rate, seconds):
    import time
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="browser-test-pace",
        enable_auto_commit=False,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    began = time.monotonic()
    offset = start
    while time.monotonic() - began < seconds:
        offset = start + int(rate * (time.monotonic() - began))
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        time.sleep(0.25)
    consumer.close()
    print("paced", offset, flush=True)


def txn(bootstrap, transactional_id, topic, timeout_ms):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=transactional_id,
        transaction_timeout_ms=timeout_ms,
    )
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(3):
        producer.send(topic, value=f"open-{i}".encode(), partition=0)
    producer.flush()
    print("open", flush=True)
    sys.stdin.read()
    producer.close(timeout=0)


def kip848(bootstrap, group, topic, name):
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "consumer",
        "client.id": name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    shown = None
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if ready and not sys.stdin.read(1):
            break
        consumer.poll(0.2)
        now = sorted(tp.partition for tp in consumer.assignment())
        if now != shown:
            shown = now
            print("assigned", json.dumps(now), flush=True)
    consumer.close()
    print("left", flush=True)


def topics(bootstrap, prefix, count):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"{prefix}{i:05d}" for i in range(count)]
    for at in range(0, count, 500):
        futures = admin.create_topics(
            [NewTopic(n, 1, 1) for n in names[at:at + 500]], operation_timeout=60
        )
        for f in futures.values():
            f.result(timeout=120)
    print("created", count, flush=True)


def main(argv):
    if argv[1] == "member":
        member(argv[2], argv[3], argv[4], json.loads(argv[5]))
    elif argv[1] == "kip848":
        kip848(argv[2], argv[3], argv[4], argv[5])
    elif argv[1] == "topics":
        topics(argv[2], argv[3], int(argv[4]))
    elif argv[1] == "offsets":
        committed(argv[2], argv[3])
    elif argv[1] == "pace":
        pace(argv[2], argv[3], argv[4], int(argv[5]), float(argv[6]), float(argv[7]))
    elif argv[1] == "txn":
        txn(argv[2], argv[3], argv[4], int(argv[5]))
    else:
        sys.exit(f"unknown command {argv[1]}")


if __name__ == "__main__":
    main(sys.argv)
