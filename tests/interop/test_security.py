"""Security interop: TLS listeners with client certificates, SASL (SCRAM-SHA-256/512 and
PLAIN) over SASL_SSL and SASL_PLAINTEXT, SCRAM users managed with the KIP-554 admin API,
and what bad peers get. Real clients (confluent-kafka/librdkafka, kafka-python, kcat)
against a real broker with four listeners:

    PLAINTEXT       inter-broker and admin (no authorizer yet)
    SSL             ssl.client.auth=required, principal from the certificate
    SASL_SSL        SCRAM-SHA-256, SCRAM-SHA-512, PLAIN
    SASL_PLAINTEXT  SCRAM-SHA-512
"""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from conftest import unique_topic, wait_until
from pki import make_pki

KCAT = shutil.which("kcat")
PASSWORD = "alice-secret"


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.fixture
def secure(broker_factory, pki):
    overrides = {
        "listeners": ",".join(
            [
                "PLAINTEXT://127.0.0.1:0",
                "SSL://127.0.0.1:0",
                "SASL_SSL://127.0.0.1:0",
                "SASL_PLAINTEXT://127.0.0.1:0",
            ]
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.ssl.ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/,DEFAULT",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": (
            'org.apache.kafka.common.security.plain.PlainLoginModule required '
            'user_bob="bob-secret" user_carol="carol-secret";'
        ),
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "connection.failed.authentication.delay.ms": "50",
    }
    b = broker_factory(1, overrides)
    assert set(b.listeners) == {"PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"}, b.listeners
    admin = AdminClient({"bootstrap.servers": b.listeners["PLAINTEXT"]})
    futures = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), PASSWORD.encode()),
            UserScramCredentialUpsertion("alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), PASSWORD.encode()),
        ]
    )
    for f in futures.values():
        f.result(timeout=20)
    return b


def sasl_conf(b, listener="SASL_SSL", mechanism="SCRAM-SHA-512", user="alice", password=PASSWORD, pki=None):
    conf = {
        "bootstrap.servers": b.listeners[listener],
        "security.protocol": listener,
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if listener.endswith("SSL"):
        conf["ssl.ca.location"] = str(pki.ca)
    return conf


def ssl_conf(b, pki, cert=None, key=None):
    return {
        "bootstrap.servers": b.listeners["SSL"],
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(cert or pki.client_cert),
        "ssl.key.location": str(key or pki.client_key),
    }


def round_trip(conf: dict, n: int = 50):
    """Produces n records and reads them back through a consumer group, committing."""
    topic = unique_topic("sec")
    p = Producer({**conf, "enable.idempotence": True})
    errors = []
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(), on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors
    c = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.commit(asynchronous=False)
    c.close()
    assert got == [f"v{i}" for i in range(n)]
    return topic


def refused(conf: dict) -> list:
    """Connects with `conf`, expecting to be refused; returns the errors the client reported."""
    errors = []
    admin = AdminClient({**conf, "error_cb": errors.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    # Error callbacks are served by poll.
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        admin.poll(0.2)
    return errors


def metrics(b) -> str:
    with urllib.request.urlopen(f"{b.http_url}/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- confluent-kafka ------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_confluent_kafka_sasl_ssl_scram(secure, pki, mechanism):
    round_trip(sasl_conf(secure, mechanism=mechanism, pki=pki))


def test_confluent_kafka_sasl_plaintext_and_plain(secure, pki):
    round_trip(sasl_conf(secure, listener="SASL_PLAINTEXT"))
    round_trip(sasl_conf(secure, mechanism="PLAIN", user="bob", password="bob-secret", pki=pki))


def test_confluent_kafka_ssl_client_certificate(secure, pki):
    round_trip(ssl_conf(secure, pki))


def test_metadata_advertises_the_listener_connected_to(secure, pki):
    for listener, conf in [
        ("SASL_SSL", sasl_conf(secure, pki=pki)),
        ("SSL", ssl_conf(secure, pki)),
        ("PLAINTEXT", {"bootstrap.servers": secure.listeners["PLAINTEXT"]}),
    ]:
        md = AdminClient(conf).list_topics(timeout=20)
        assert [f"{b.host}:{b.port}" for b in md.brokers.values()] == [secure.listeners[listener]], listener


def test_scram_users_described_and_deleted(secure, pki):
    admin = AdminClient({"bootstrap.servers": secure.listeners["PLAINTEXT"]})
    desc = admin.describe_user_scram_credentials(["alice"])["alice"].result(timeout=20)
    mechs = sorted((i.mechanism, i.iterations) for i in desc.scram_credential_infos)
    assert mechs == [(ScramMechanism.SCRAM_SHA_256, 4096), (ScramMechanism.SCRAM_SHA_512, 8192)]
    # Deleting alice's SCRAM-SHA-256 credential logs her out of that mechanism only.
    admin.alter_user_scram_credentials([UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_256)])[
        "alice"
    ].result(timeout=20)
    errors = refused(sasl_conf(secure, mechanism="SCRAM-SHA-256", pki=pki))
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    AdminClient(sasl_conf(secure, pki=pki)).list_topics(timeout=20)
    # Kafka's per-user errors: unknown user, too few iterations, deleting what is not there.
    with pytest.raises(KafkaException) as e:
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(timeout=20)
    assert "RESOURCE_NOT_FOUND" in str(e.value)
    with pytest.raises(KafkaException) as e:
        admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"x")]
        )["dave"].result(timeout=20)
    assert "UNACCEPTABLE_CREDENTIAL" in str(e.value)
    with pytest.raises(KafkaException) as e:
        admin.alter_user_scram_credentials([UserScramCredentialDeletion("dave", ScramMechanism.SCRAM_SHA_512)])[
            "dave"
        ].result(timeout=20)
    assert "RESOURCE_NOT_FOUND" in str(e.value)


# -- kafka-python ---------------------------------------------------------------------------


def kafka_python_round_trip(**conf):
    from kafka import KafkaConsumer, KafkaProducer

    topic = unique_topic("kp-sec")
    p = KafkaProducer(**conf)
    for i in range(20):
        p.send(topic, value=f"v{i}".encode()).get(timeout=30)
    p.close()
    c = KafkaConsumer(
        topic,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
        **conf,
    )
    got = []
    for m in c:
        got.append(m.value.decode())
        if len(got) == 20:
            break
    c.commit()
    c.close()
    assert got == [f"v{i}" for i in range(20)]


def test_kafka_python_sasl_ssl_scram_and_ssl_certificate(secure, pki):
    kafka_python_round_trip(
        bootstrap_servers=secure.listeners["SASL_SSL"],
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="alice",
        sasl_plain_password=PASSWORD,
        ssl_cafile=str(pki.ca),
    )
    kafka_python_round_trip(
        bootstrap_servers=secure.listeners["SSL"],
        security_protocol="SSL",
        ssl_cafile=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
    )


# -- kcat -----------------------------------------------------------------------------------


def test_kcat_sasl_ssl_and_ssl(secure, pki):
    if KCAT is None:
        pytest.fail("kcat not installed (scripts/test.sh installs it)", pytrace=False)
    for args in [
        ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice",
         "-X", f"sasl.password={PASSWORD}", "-X", f"ssl.ca.location={pki.ca}", "-b", secure.listeners["SASL_SSL"]],
        ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki.ca}",
         "-X", f"ssl.certificate.location={pki.client_cert}", "-X", f"ssl.key.location={pki.client_key}",
         "-b", secure.listeners["SSL"]],
    ]:
        topic = unique_topic("kcat-sec")
        lines = [f"k{i}:v{i}" for i in range(30)]
        p = subprocess.run([KCAT, *args, "-P", "-t", topic, "-K:"], input="\n".join(lines).encode() + b"\n",
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode()
        c = subprocess.run([KCAT, *args, "-G", f"g-{topic}", "-o", "beginning", "-e", "-f", "%k=%s\n", topic],
                           capture_output=True, timeout=60)
        assert c.returncode == 0, c.stderr.decode()
        assert sorted(c.stdout.decode().split()) == sorted(line.replace(":", "=") for line in lines)


# -- bad peers ------------------------------------------------------------------------------


def frame(api_key: int, version: int, body: bytes, corr: int = 7, client: bytes = b"t") -> bytes:
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    msg = header + body
    return struct.pack(">i", len(msg)) + msg


def read_frame(s) -> bytes:
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    return recv_exact(s, size)


def recv_exact(s, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def closes(s) -> bool:
    """Reads until the peer closes (a TLS alert may come first); False on a timeout."""
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def sasl_handshake(s, mechanism: bytes) -> int:
    """SaslHandshake v1; returns the error code."""
    s.sendall(frame(17, 1, struct.pack(">h", len(mechanism)) + mechanism))
    body = read_frame(s)
    return struct.unpack(">h", body[4:6])[0]


def test_bad_credentials_mechanisms_and_protocols(secure, pki):
    before = metrics(secure)
    # Wrong password, unknown user: Kafka's authentication error, for both the same.
    messages = []
    for user, password in [("alice", "wrong"), ("nobody", "x")]:
        errors = refused(sasl_conf(secure, user=user, password=password, pki=pki))
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        assert auth, errors
        messages.append(auth[0].str().split(": ", 1)[-1].split(" (after")[0])
    # The same answer for an unknown user as for a wrong password (no user enumeration).
    assert "invalid credentials" in messages[0] and messages[0] == messages[1], messages
    # SaslHandshake with a mechanism the listener does not offer: UNSUPPORTED_SASL_MECHANISM,
    # then the connection closes.
    host, port = secure.listeners["SASL_PLAINTEXT"].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        assert sasl_handshake(s, b"GSSAPI") == 33
        assert closes(s)
    # A Kafka request before authenticating on a SASL listener: closed.
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame(3, 1, struct.pack(">i", 0)))  # Metadata v1, no topics
        assert closes(s)
    # SASL bytes on a PLAINTEXT listener: ILLEGAL_SASL_STATE, and the connection goes on.
    host, port = secure.listeners["PLAINTEXT"].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        assert sasl_handshake(s, b"PLAIN") == 34
        s.sendall(frame(18, 0, b""))  # ApiVersions v0 still answered
        assert read_frame(s)[:4] == struct.pack(">i", 7)
    # Plaintext bytes on the TLS port: closed, the reason counted.
    host, port = secure.listeners["SSL"].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(frame(18, 0, b""))
        assert closes(s), "plaintext on the TLS port must close the connection"
    # TLS to the PLAINTEXT port: the ClientHello is not a Kafka frame; closed.
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    host, port = secure.listeners["PLAINTEXT"].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    # An untrusted and an expired client certificate: refused in the handshake.
    for cert, key in [(pki.stranger_cert, pki.stranger_key), (pki.expired_cert, pki.expired_key)]:
        errors = refused(ssl_conf(secure, pki, cert, key))
        assert any(e.code() in (KafkaError._SSL, KafkaError._TRANSPORT) for e in errors), errors
    after = metrics(secure)
    assert metric(after, "rill_authentications_total", result="failure") >= metric(
        before, "rill_authentications_total", result="failure"
    ) + 2
    assert metric(after, "rill_connections_closed_total", reason="tls_handshake") >= 3
    # And the broker serves everyone else.
    round_trip(sasl_conf(secure, pki=pki), n=5)


def test_authentication_flood_is_slowed_and_others_are_served(secure, pki):
    """100 wrong passwords on 10 connections at once: every one costs the failed-auth delay
    and its connection; a good client is served meanwhile."""
    host, port = secure.listeners["SASL_PLAINTEXT"].split(":")

    def guess(n: int, out: list):
        for _ in range(n):
            with socket.create_connection((host, int(port)), timeout=10) as s:
                assert sasl_handshake(s, b"SCRAM-SHA-512") == 0
                first = b"n,,n=alice,r=" + b"x" * 24
                s.sendall(frame(36, 1, struct.pack(">i", len(first)) + first))
                body = read_frame(s)
                err = struct.unpack(">h", body[4:6])[0]
                assert err == 0, err
                # Reply with a bogus proof.
                ml = struct.unpack(">h", body[6:8])[0]
                blen = struct.unpack(">i", body[8 + max(ml, 0):12 + max(ml, 0)])[0]
                server_first = body[12 + max(ml, 0):12 + max(ml, 0) + blen].decode()
                nonce = dict(kv.split("=", 1) for kv in server_first.split(","))["r"]
                final = f"c=biws,r={nonce},p={'A' * 88}".encode()
                started = time.monotonic()
                s.sendall(frame(36, 1, struct.pack(">i", len(final)) + final, corr=8))
                body = read_frame(s)
                out.append((struct.unpack(">h", body[4:6])[0], time.monotonic() - started))
                assert closes(s)

    results: list = []
    threads = [threading.Thread(target=guess, args=(10, results)) for _ in range(10)]
    for t in threads:
        t.start()
    round_trip(sasl_conf(secure, listener="SASL_PLAINTEXT"), n=10)
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 100
    assert all(code == 58 for code, _ in results), results[:5]
    assert min(delay for _, delay in results) >= 0.045  # connection.failed.authentication.delay.ms=50
    assert metric(metrics(secure), "rill_authentications_total", result="failure") >= 100


def test_certificates_reload_when_the_file_changes(secure, pki):
    def server_cn():
        host, port = secure.listeners["SSL"].split(":")
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                subject = dict(x[0] for x in s.getpeercert()["subject"])
                return subject["commonName"]

    assert server_cn() == "broker"
    pki.reissue_server("broker-rotated")
    wait_until(lambda: server_cn() == "broker-rotated", 20, "the rotated certificate to be served")
    round_trip(ssl_conf(secure, pki), n=5)


def scram_sha512_login(s, user: str, password: str) -> int:
    """SaslHandshake v1 + a SCRAM-SHA-512 exchange by hand; returns session_lifetime_ms."""
    import base64
    import hashlib
    import hmac

    assert sasl_handshake(s, b"SCRAM-SHA-512") == 0

    def authenticate(token: bytes, corr: int) -> tuple[int, bytes, int]:
        s.sendall(frame(36, 1, struct.pack(">i", len(token)) + token, corr=corr))
        body = read_frame(s)
        err = struct.unpack(">h", body[4:6])[0]
        ml = max(struct.unpack(">h", body[6:8])[0], 0)
        at = 8 + ml
        blen = struct.unpack(">i", body[at:at + 4])[0]
        data = body[at + 4:at + 4 + blen]
        lifetime = struct.unpack(">q", body[at + 4 + blen:at + 12 + blen])[0]
        return err, data, lifetime

    bare = f"n={user},r=clientnonce123"
    err, server_first, _ = authenticate(f"n,,{bare}".encode(), 8)
    assert err == 0, err
    attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    without = f"c=biws,r={attrs['r']}"
    auth = f"{bare},{server_first.decode()},{without}".encode()
    sig = hmac.new(hashlib.sha512(client_key).digest(), auth, "sha512").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
    err, final, lifetime = authenticate(f"{without},p={proof}".encode(), 9)
    assert err == 0 and final.startswith(b"v="), (err, final)
    return lifetime


def test_sessions_expire_and_librdkafka_reauthenticates(broker_factory):
    """KIP-368: with connections.max.reauth.ms the broker tells clients their session's
    lifetime, closes a connection that uses an expired session, and librdkafka
    re-authenticates on its connections and keeps producing."""
    b = broker_factory(1, {
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "connections.max.reauth.ms": "1500",
    })
    a = AdminClient({"bootstrap.servers": b.listeners["PLAINTEXT"]})
    a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), PASSWORD.encode())])["alice"].result(timeout=20)
    host, port = b.listeners["SASL_PLAINTEXT"].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        assert scram_sha512_login(s, "alice", PASSWORD) == 1500
        s.sendall(frame(18, 0, b"", corr=10))  # within the session: answered
        assert read_frame(s)[:4] == struct.pack(">i", 10)
        time.sleep(1.6)  # the session's lifetime is what is under test
        s.sendall(frame(18, 0, b"", corr=11))
        assert closes(s), "a request on an expired session closes the connection"
    before = metric(metrics(b), "rill_authentications_total", result="success")
    conf = sasl_conf(b, listener="SASL_PLAINTEXT")
    p = Producer(conf)
    topic = unique_topic("reauth")
    errors, delivered = [], []
    deadline = time.monotonic() + 5
    i = 0
    while time.monotonic() < deadline:
        p.produce(topic, f"{i}".encode(), on_delivery=lambda e, m: (errors if e else delivered).append(e or m))
        p.poll(0.05)
        i += 1
    assert p.flush(30) == 0
    assert not errors and len(delivered) == i, errors[:3]
    # Sessions of 1.5 s over 5 s of producing: librdkafka re-authenticated.
    assert metric(metrics(b), "rill_authentications_total", result="success") >= before + 3


def test_secrets_are_never_shown(secure, pki):
    """DescribeConfigs and the HTTP API list the security settings, secrets as sensitive
    with no value (Kafka's rule for PASSWORD configs)."""
    import json

    from confluent_kafka.admin import ConfigResource
    from confluent_kafka.admin import ResourceType as CfgResourceType

    a = AdminClient({"bootstrap.servers": secure.listeners["PLAINTEXT"]})
    res = ConfigResource(CfgResourceType.BROKER, "1")
    configs = a.describe_configs([res])[res].result(timeout=20)
    jaas = configs["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert jaas.is_sensitive and jaas.value is None, jaas
    assert configs["ssl.keystore.location"].value == str(pki.server)
    assert not configs["ssl.keystore.location"].is_sensitive
    with urllib.request.urlopen(f"{secure.http_url}/api/v1/configs", timeout=10) as r:
        body = r.read().decode()
    assert "bob-secret" not in body and "carol-secret" not in body
    http = {c["name"]: c for c in json.loads(body)}
    assert http["listener.name.sasl_ssl.plain.sasl.jaas.config"] == {
        "name": "listener.name.sasl_ssl.plain.sasl.jaas.config", "value": None,
        "source": "STATIC_BROKER_CONFIG", "sensitive": True,
    }
