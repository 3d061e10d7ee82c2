#!/usr/bin/env python3
"""Security bench: produce/consume throughput and connection set-up time over PLAINTEXT
without an authorizer (the baseline), PLAINTEXT with ACLs on, SSL with ACLs, and SASL_SSL
(SCRAM-SHA-512) with ACLs, side by side in one run against one real `rill-broker` process,
driven by confluent-kafka (librdkafka).

    python3 broker/benches/security/run.py [--broker target/release/rill-broker]
        [--records 300000] [--trials 3] [--report target/bench-security.md]

Two brokers run at once: the baseline (no authorizer) and the secured one (authorizer on;
the bench principals have only the ACLs they need, so every request goes through the ACL
checks, none through the super-user shortcut). Trials alternate between the modes, so
drift on the machine spreads over all of them; the report gives each mode's median.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests" / "interop"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pki import make_pki  # noqa: E402

VALUE = os.urandom(1024)


def start(binary: str, data: Path, overrides: dict) -> tuple[subprocess.Popen, dict]:
    args = [binary, "--override", "http.listener=127.0.0.1:0", "--override", f"log.dirs={data}"]
    for k, v in overrides.items():
        args += ["--override", f"{k}={v}"]
    env = dict(os.environ, RILL_LOG="warn")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    for raw in p.stdout:
        line = raw.decode()
        if line.startswith("rill-broker ready:"):
            m = re.search(r"listeners=(\S+)", line)
            return p, dict(item.split("@") for item in m.group(1).split(","))
    raise SystemExit("broker did not start")


def produce(conf: dict, topic: str, n: int) -> float:
    p = Producer({**conf, "acks": "1", "linger.ms": 5, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 1_000_000, "compression.type": "none"})
    t0 = time.perf_counter()
    for i in range(n):
        while True:
            try:
                p.produce(topic, VALUE)
                break
            except BufferError:
                p.poll(0.01)
    if p.flush(120) != 0:
        raise SystemExit("produce did not finish")
    return n / (time.perf_counter() - t0)


def consume(conf: dict, topic: str, n: int, group: str) -> float:
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.max.bytes": 50 << 20})
    c.subscribe([topic])
    got = 0
    t0 = None
    while got < n:
        msgs = c.consume(10_000, 5.0)
        if not msgs and t0 is not None and time.perf_counter() - t0 > 120:
            raise SystemExit("consume stalled")
        for m in msgs:
            if m.error() is None:
                if t0 is None:
                    t0 = time.perf_counter()
                got += 1
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    c.close()
    return got * len(VALUE) / elapsed / 1e6


def setup_ms(conf: dict, times: int = 20) -> float:
    out = []
    for _ in range(times):
        t0 = time.perf_counter()
        AdminClient(conf).list_topics(timeout=20)
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default=str(REPO / "target" / "release" / "rill-broker"))
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--report", default=str(REPO / "target" / "bench-security.md"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rill-bench-security-"))
    pki = make_pki(tmp / "pki")
    base, base_l = start(a.broker, tmp / "base", {"listeners": "PLAINTEXT://127.0.0.1:0"})
    sec, sec_l = start(a.broker, tmp / "sec", {
        "listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0,INTERNAL://127.0.0.1:0",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT",
        "inter.broker.listener.name": "INTERNAL",
        "ssl.keystore.location": str(pki.server),
        "ssl.truststore.location": str(pki.ca),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The admin below, not the bench principals.
        "super.users": "User:root",
        # Certificates name principals by their CN (User:alice, User:root).
        "listener.name.ssl.ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/,DEFAULT",
    })
    root_key, root_cert = pki._ca.issue("root", server=False)
    from cryptography.hazmat.primitives import serialization
    (tmp / "root.key").write_bytes(root_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp / "root.pem").write_bytes(root_cert.public_bytes(serialization.Encoding.PEM))
    ssl = lambda cert, key: {  # noqa: E731
        "bootstrap.servers": sec_l["SSL"], "security.protocol": "SSL", "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(cert), "ssl.key.location": str(key)}
    modes = {
        "PLAINTEXT, no authorizer (baseline)": {"bootstrap.servers": base_l["PLAINTEXT"]},
        "PLAINTEXT, ACLs on": {"bootstrap.servers": sec_l["PLAINTEXT"]},
        "SSL (client cert), ACLs on": ssl(pki.client_cert, pki.client_key),
        "SASL_SSL SCRAM-SHA-512, ACLs on": {
            "bootstrap.servers": sec_l["SASL_SSL"], "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "bench",
            "sasl.password": "bench-pw", "ssl.ca.location": str(pki.ca)},
    }
    try:
        # The super user (certificate CN=root) creates the SCRAM user and the bench
        # principals' ACLs; the bench principals get only those ACLs.
        root = AdminClient(ssl(tmp / "root.pem", tmp / "root.key"))
        for f in root.alter_user_scram_credentials([UserScramCredentialUpsertion(
                "bench", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"bench-pw")]).values():
            f.result(timeout=30)
        acls = []
        for who in ("User:ANONYMOUS", "User:alice", "User:bench"):
            for op in (AclOperation.WRITE, AclOperation.READ, AclOperation.CREATE):
                acls.append(AclBinding(ResourceType.TOPIC, "bench-", ResourcePatternType.PREFIXED,
                                       who, "*", op, AclPermissionType.ALLOW))
            acls.append(AclBinding(ResourceType.GROUP, "bench-", ResourcePatternType.PREFIXED,
                                   who, "*", AclOperation.READ, AclPermissionType.ALLOW))
        for f in root.create_acls(acls).values():
            f.result(timeout=30)
        results = {m: {"produce": [], "consume": []} for m in modes}
        for trial in range(a.trials):
            order = list(modes) if trial % 2 == 0 else list(reversed(modes))
            for m in order:
                conf = modes[m]
                topic = f"bench-{trial}-{abs(hash(m)) % 10_000}"
                admin = AdminClient(conf)
                for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                    f.result(timeout=30)
                results[m]["produce"].append(produce(conf, topic, a.records))
                results[m]["consume"].append(consume(conf, topic, a.records, f"bench-{topic}"))
                print(f"trial {trial} {m}: {results[m]['produce'][-1]:,.0f} msgs/s, "
                      f"{results[m]['consume'][-1]:,.1f} MB/s", flush=True)
        setups = {m: setup_ms(conf) for m, conf in modes.items()}
        base_p = statistics.median(results[next(iter(modes))]["produce"])
        base_c = statistics.median(results[next(iter(modes))]["consume"])
        lines = [
            "# Security bench (broker/benches/security/run.py)", "",
            f"{a.records:,} records of 1 KiB per trial, {a.trials} trials per mode, alternating; "
            "one partition, acks=1, linger 5 ms, confluent-kafka "
            "(librdkafka), medians. Set-up: connect, authenticate and one Metadata, median of 20.", "",
            "| mode | produce msgs/s | vs baseline | consume MB/s | vs baseline | connection set-up ms |",
            "|---|---|---|---|---|---|",
        ]
        for m in modes:
            p = statistics.median(results[m]["produce"])
            c = statistics.median(results[m]["consume"])
            lines.append(f"| {m} | {p:,.0f} | {100 * p / base_p - 100:+.1f} % | {c:,.1f} | "
                         f"{100 * c / base_c - 100:+.1f} % | {setups[m]:.1f} |")
        lines += ["", "Every trial:", ""]
        for m in modes:
            lines.append(f"- {m}: produce {', '.join(f'{x:,.0f}' for x in results[m]['produce'])}; "
                         f"consume {', '.join(f'{x:,.1f}' for x in results[m]['consume'])}")
        Path(a.report).parent.mkdir(parents=True, exist_ok=True)
        Path(a.report).write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        for p in (base, sec):
            p.terminate()
            p.wait(timeout=30)


if __name__ == "__main__":
    main()
