"""confluent-kafka (librdkafka) against Rill's ElectLeaders (KIP-460) and DescribeCluster."""

from __future__ import annotations

from confluent_kafka import ElectionType, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import unique_topic
from test_confluent_kafka import admin, create_topics


def error_code(e) -> int:
    """The Kafka error code of a per-partition result (None means success)."""
    if e is None:
        return 0
    if hasattr(e, "code"):  # a KafkaError
        return e.code()
    return e.args[0].code()  # a KafkaException wrapping one


def test_elect_leaders_and_describe_cluster(broker):
    a = admin(broker)
    topic = unique_topic("cf-elect")
    create_topics(a, [NewTopic(topic, num_partitions=2, replication_factor=1)])
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    # One node leads everything already: nothing to elect.
    for kind in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        result = a.elect_leaders(kind, tps).result(timeout=30)
        codes = {(tp.topic, tp.partition): error_code(e) for tp, e in result.items()}
        assert codes == {(topic, 0): KafkaError.ELECTION_NOT_NEEDED, (topic, 1): KafkaError.ELECTION_NOT_NEEDED}, codes
    # Every partition: those that need no election are left out of the answer.
    assert a.elect_leaders(ElectionType.PREFERRED, None).result(timeout=30) == {}
    # An unknown partition.
    result = a.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 7)]).result(timeout=30)
    assert [error_code(e) for e in result.values()] == [KafkaError.UNKNOWN_TOPIC_OR_PART]

    cluster = a.describe_cluster(request_timeout=20).result(timeout=30)
    assert [n.id for n in cluster.nodes] == [1]
    assert cluster.controller is not None and cluster.controller.id == 1
    assert cluster.cluster_id
