"""Interop with kcat (librdkafka's command-line client), as an operator would use it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import unique_topic

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


@pytest.fixture
def kcat():
    if KCAT is None:
        pytest.fail("kcat not installed (scripts/test.sh installs it: apt-get install -y kcat)", pytrace=False)

    def run(*args, stdin: str = "", timeout: float = 60):
        proc = subprocess.run([KCAT, *args], input=stdin.encode(), capture_output=True, timeout=timeout)
        assert proc.returncode == 0, (
            f"kcat {' '.join(args)} exited {proc.returncode}\nstderr:\n{proc.stderr.decode(errors='replace')}"
        )
        return proc.stdout.decode(), proc.stderr.decode(errors="replace")

    return run


def test_kcat_produce_consume_and_list(broker, kcat):
    topic = unique_topic("kcat")
    lines = [f"key-{i}:value {i} with spaces" for i in range(100)]

    # -P with -K: reads key:value lines from stdin; the topic is auto-created.
    _, err = kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K:", stdin="\n".join(lines) + "\n")
    assert "% ERROR" not in err and "Delivery failed" not in err, err

    out, _ = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%k=%s\n")
    assert out.splitlines() == [line.replace(":", "=", 1) for line in lines]

    # offsets and partitions as kcat reports them
    out, _ = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%p %o %k\n")
    assert out.splitlines() == [f"0 {i} key-{i}" for i in range(100)]

    # -L lists the topic (plain text), -L -J as JSON
    out, _ = kcat("-b", broker.bootstrap, "-L", "-t", topic)
    assert f'topic "{topic}" with 1 partitions:' in out, out
    assert "partition 0, leader 1, replicas: 1, isrs: 1" in out, out

    out, _ = kcat("-b", broker.bootstrap, "-L", "-J")
    md = json.loads(out)
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert brokers == {1: broker.bootstrap}, md["brokers"]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, sorted(topics)
    t = topics[topic]
    assert "error" not in t, t
    assert [(p["partition"], p["leader"]) for p in t["partitions"]] == [(0, 1)], t


def test_kcat_consume_from_offset_and_tail(broker, kcat):
    topic = unique_topic("kcat-offsets")
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K:", stdin="".join(f"k{i}:v{i}\n" for i in range(20)))

    out, _ = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "15", "-e", "-f", "%o:%s\n")
    assert out.splitlines() == [f"{i}:v{i}" for i in range(15, 20)]

    # negative offset: the last 3 records
    out, _ = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "-3", "-e", "-f", "%s\n")
    assert out.splitlines() == ["v17", "v18", "v19"]

    # -c limits the count
    out, _ = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", "4", "-f", "%s\n")
    assert out.splitlines() == ["v0", "v1", "v2", "v3"]
