"""ACLs with Kafka's StandardAuthorizer semantics, through confluent-kafka (librdkafka) and
kafka-python against a real broker: deny by default, prefixed grants exactly what they
name, DENY overrides ALLOW, super users bypass; the ACL admin API as librdkafka's 0081 test
drives it (create, describe with filters, delete, bad bindings, unauthorized callers).

The broker: PLAINTEXT (inter-broker, User:ANONYMOUS is a super user as Kafka setups with a
PLAINTEXT inter-broker listener need) and SASL_PLAINTEXT with PLAIN users admin (super
user), alice and bob.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from conftest import unique_topic, wait_until

USERS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture
def secured(broker_factory):
    jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required " + " ".join(
        f'user_{u}="{p}"' for u, p in USERS.items()
    ) + ";"
    return broker_factory(
        1,
        {
            "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:ANONYMOUS",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.num.partitions": "2",
        },
    )


def conf(b, user: str) -> dict:
    return {
        "bootstrap.servers": b.listeners["SASL_PLAINTEXT"],
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": user,
        "sasl.password": USERS[user],
    }


def admin(b, user="admin") -> AdminClient:
    return AdminClient(conf(b, user))


def create_topics(a: AdminClient, *names):
    for f in a.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(timeout=20)


def add_acls(a: AdminClient, *bindings):
    for f in a.create_acls(list(bindings)).values():
        f.result(timeout=20)


def allow(rt, name, pattern, user, op):
    return AclBinding(rt, name, pattern, f"User:{user}", "*", op, AclPermissionType.ALLOW)


def produce_error(b, user: str, topic: str):
    """Produces one record; the delivery error, or None."""
    p = Producer({**conf(b, user), "message.timeout.ms": 5000})
    out = []
    p.produce(topic, b"v", on_delivery=lambda e, m: out.append(e))
    p.flush(15)
    assert out, "no delivery report"
    return out[0]


def consume(b, user: str, topic: str, group: str, n: int, timeout=20.0):
    """Reads through a group; (records, errors)."""
    c = Consumer({**conf(b, user), "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, errors = [], []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
            if m.error().code() in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED):
                break
        else:
            got.append(m.value())
    if got:
        c.commit(asynchronous=False)
    c.close()
    return got, errors


def test_deny_by_default_then_prefixed_grants_exactly_what_they_name(secured):
    a = admin(secured)
    create_topics(a, "app-orders", "other-topic", "app-secret")
    # The super user produces to all three.
    for t in ("app-orders", "other-topic", "app-secret"):
        assert produce_error(secured, "admin", t) is None

    # alice has no ACLs: sees no topics, cannot produce, fetch, join or commit.
    md = admin(secured, "alice").list_topics(timeout=20)
    assert set(md.topics) == set(), sorted(md.topics)
    err = produce_error(secured, "alice", "app-orders")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    got, errors = consume(secured, "alice", "app-orders", "app-g", 1, timeout=10)
    assert got == [] and any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in errors), errors

    # Prefixed ACLs: topics and groups starting with "app-".
    add_acls(
        a,
        allow(ResourceType.TOPIC, "app-", ResourcePatternType.PREFIXED, "alice", AclOperation.WRITE),
        allow(ResourceType.TOPIC, "app-", ResourcePatternType.PREFIXED, "alice", AclOperation.READ),
        allow(ResourceType.GROUP, "app-", ResourcePatternType.PREFIXED, "alice", AclOperation.READ),
    )
    md = admin(secured, "alice").list_topics(timeout=20)
    assert set(md.topics) == {"app-orders", "app-secret"}, sorted(md.topics)
    assert produce_error(secured, "alice", "app-orders") is None
    err = produce_error(secured, "alice", "other-topic")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    got, errors = consume(secured, "alice", "app-orders", "app-g", 2)
    assert got == [b"v", b"v"], errors
    # A group outside the prefix is refused.
    got, errors = consume(secured, "alice", "app-orders", "elsewhere", 1, timeout=10)
    assert got == [] and any(e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED for e in errors), errors

    # DENY overrides ALLOW: READ on app-secret denied, WRITE still allowed.
    add_acls(a, AclBinding(ResourceType.TOPIC, "app-secret", ResourcePatternType.LITERAL,
                           "User:alice", "*", AclOperation.READ, AclPermissionType.DENY))
    got, errors = consume(secured, "alice", "app-secret", "app-g2", 1, timeout=10)
    assert got == [] and any(e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors
    assert produce_error(secured, "alice", "app-secret") is None
    # bob is still refused everything; admin still bypasses.
    assert set(admin(secured, "bob").list_topics(timeout=20).topics) == set()
    assert produce_error(secured, "admin", "other-topic") is None


def test_kafka_python_is_refused_and_then_allowed(secured):
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    a = admin(secured)
    create_topics(a, "kp-topic")
    kp = dict(
        bootstrap_servers=secured.listeners["SASL_PLAINTEXT"],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="bob",
        sasl_plain_password=USERS["bob"],
    )
    p = KafkaProducer(max_block_ms=5000, **kp)
    with pytest.raises(Exception) as e:
        p.send("kp-topic", b"x").get(timeout=10)
    assert "TopicAuthorization" in type(e.value).__name__ or isinstance(e.value, TopicAuthorizationFailedError) or "authoriz" in str(e.value).lower(), repr(e.value)
    p.close()
    add_acls(a, allow(ResourceType.TOPIC, "kp-topic", ResourcePatternType.LITERAL, "bob", AclOperation.WRITE))
    p = KafkaProducer(**kp)
    meta = p.send("kp-topic", b"x").get(timeout=20)
    assert meta.offset >= 0
    p.close()


def test_acl_admin_api_as_librdkafka_0081_drives_it(secured):
    """CreateAcls, DescribeAcls and DeleteAcls as librdkafka's 0081-admin test calls them."""
    a = admin(secured)
    topic = unique_topic("acl")
    acl1 = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:test", "*",
                      AclOperation.READ, AclPermissionType.ALLOW)
    acl2 = AclBinding(ResourceType.TOPIC, topic[:6], ResourcePatternType.PREFIXED, "User:test", "*",
                      AclOperation.WRITE, AclPermissionType.DENY)
    acl3 = AclBinding(ResourceType.GROUP, "grp", ResourcePatternType.LITERAL, "User:test2", "*",
                      AclOperation.ALL, AclPermissionType.ALLOW)
    add_acls(a, acl1, acl2, acl3)

    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    described = a.describe_acls(any_filter).result(timeout=20)
    assert {str(x) for x in described} >= {str(acl1), str(acl2), str(acl3)}, described

    # MATCH: the bindings that apply to the named topic (literal and prefixed).
    match = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    assert {str(x) for x in a.describe_acls(match).result(timeout=20)} == {str(acl1), str(acl2)}

    # Delete the topic ACLs by filter; each result lists what it removed.
    topic_filter = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:test", None,
                                    AclOperation.ANY, AclPermissionType.ANY)
    deleted = a.delete_acls([topic_filter])[topic_filter].result(timeout=20)
    assert {str(x) for x in deleted} == {str(acl1), str(acl2)}
    left = {str(x) for x in a.describe_acls(any_filter).result(timeout=20)}
    assert str(acl3) in left and str(acl1) not in left

    # A binding Kafka refuses: the cluster resource has one name.
    bad = AclBinding(ResourceType.BROKER, "not-kafka-cluster", ResourcePatternType.LITERAL, "User:x", "*",
                     AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as e:
        a.create_acls([bad])[bad].result(timeout=20)
    assert "INVALID_REQUEST" in str(e.value) or "kafka-cluster" in str(e.value), e.value

    # Not a super user and no ALTER on the cluster: refused.
    alice = admin(secured, "alice")  # kept: a dropped client cancels its requests
    with pytest.raises(KafkaException) as e:
        alice.create_acls([acl1])[acl1].result(timeout=20)
    assert "CLUSTER_AUTHORIZATION_FAILED" in str(e.value), e.value
    # DescribeAcls' top-level error: confluent-kafka 2.12 hands back an empty list for it,
    # so kafka-python, which raises the broker's error, checks it.
    from kafka.admin import (ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePatternFilter)
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import ClusterAuthorizationFailedError

    kp = KafkaAdminClient(bootstrap_servers=secured.listeners["SASL_PLAINTEXT"],
                          security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_plain_username="alice", sasl_plain_password=USERS["alice"])
    with pytest.raises(ClusterAuthorizationFailedError):
        kp.describe_acls(ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                                   permission_type=ACLPermissionType.ANY,
                                   resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None,
                                                                          ACLResourcePatternType.ANY)))
    kp.close()


def test_acl_apis_without_an_authorizer_say_security_disabled(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    b = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:x", "*",
                   AclOperation.READ, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as e:
        a.create_acls([b])[b].result(timeout=20)
    assert "SECURITY_DISABLED" in str(e.value), e.value


def test_acls_survive_a_restart(secured):
    a = admin(secured)
    create_topics(a, "keep-topic")
    add_acls(a, allow(ResourceType.TOPIC, "keep-", ResourcePatternType.PREFIXED, "bob", AclOperation.WRITE))
    secured.restart()
    wait_until(lambda: produce_error(secured, "bob", "keep-topic") is None, 30, "bob's ACL after a restart")
    err = produce_error(secured, "alice", "keep-topic")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err


def test_certificate_principals_get_acls(broker_factory, tmp_path):
    """A client certificate's subject, mapped by ssl.principal.mapping.rules, is the principal
    ACLs name: CN=alice becomes User:alice."""
    from pki import make_pki

    pki = make_pki(tmp_path / "pki")
    b = broker_factory(1, {
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "ssl.keystore.location": str(pki.server),
        "ssl.truststore.location": str(pki.ca),
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/L,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
    })
    root = AdminClient({"bootstrap.servers": b.listeners["PLAINTEXT"]})
    create_topics(root, "cert-topic")
    ssl_conf = {
        "bootstrap.servers": b.listeners["SSL"], "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca), "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key), "message.timeout.ms": 5000,
    }

    def produce_err():
        p = Producer(ssl_conf)
        out = []
        p.produce("cert-topic", b"v", on_delivery=lambda e, m: out.append(e))
        p.flush(15)
        return out[0]

    err = produce_err()
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    add_acls(root, allow(ResourceType.TOPIC, "cert-topic", ResourcePatternType.LITERAL, "alice", AclOperation.WRITE))
    assert produce_err() is None
