"""The Prometheus suite's harness (conftest.py turns it into fixtures): a real 3-node Rill cluster, a workload, the console
(when `rill console` exists in this build), and Debian's `prometheus` scraping them.

Everything listens on 127.0.0.1 with ports chosen at run time; every wait is a bounded poll
of a condition. Logs, the generated Prometheus config and a JSON report of every checked
expression go to tests/artifacts/prometheus/.

The brokers are started with the interop suite's `BrokerProcess` (tests/interop/conftest.py:
ready line, logs, SIGTERM/SIGKILL), three at once since a quorum needs all of them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import yaml

from queries import DASHBOARDS, REPO_ROOT

_spec = importlib.util.spec_from_file_location("rill_interop_harness", REPO_ROOT / "tests" / "interop" / "conftest.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)
BrokerProcess = harness.BrokerProcess
wait_until = harness.wait_until
tail = harness.tail
free_port = harness.free_port

ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "prometheus"
PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"
START_TIMEOUT_S = 60.0

# Keys of a docker-compose.yml broker command that are about this run's addresses and
# files; the others (replication factors, min ISR, ...) are applied to the test cluster too,
# so it runs with compose's settings.
COMPOSE_ADDRESS_KEYS = {"node.id", "cluster.id", "listeners", "advertised.listeners",
                        "controller.quorum.voters", "http.listener", "log.dirs"}


def compose_overrides(service: str = "rill-1") -> dict:
    """`--override key=value` pairs of a docker-compose.yml broker command."""
    import re

    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    command = compose["services"][service]["command"]
    return dict(kv.split("=", 1) for kv in re.findall(r"--override\s+(\S+)", command))


BROKER_OVERRIDES = {
    **{k: v for k, v in compose_overrides().items() if k not in COMPOSE_ADDRESS_KEYS},
    # Fast failure detection, so the alert test sees a killed broker fenced within seconds.
    "group.initial.rebalance.delay.ms": "0",
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "300",
}


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rill_binary() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    if not base.is_absolute():
        base = REPO_ROOT / base
    return Path(os.environ.get("RILL_BIN") or base / "debug" / "rill")


def console_help() -> Optional[str]:
    """`rill console --help` when this build has the console, else None."""
    binary = rill_binary()
    if not binary.exists():
        return None
    try:
        r = subprocess.run([str(binary), "console", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------


class Managed:
    """A child process with its output in a log file; stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, args: list[str], cwd: Path, log: Path):
        self.name, self.args, self.log = name, args, log
        with open(log, "ab") as out:
            out.write(f"===== {' '.join(args)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                args, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=harness._set_pdeathsig, env={**os.environ, "NO_COLOR": "1"},
            )

    def check_alive(self):
        code = self.proc.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with code {code}; log tail:\n{tail(self.log)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


class Prometheus:
    def __init__(self, url: str, proc: Managed, config_path: Path):
        self.url, self.proc, self.config_path = url, proc, config_path

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}", timeout=10)
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: HTTP {status}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str) -> list:
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [data["result"]]
        return data["result"]

    def metric_names(self) -> set[str]:
        return set(self.api("label/__name__/values"))


# --------------------------------------------------------------------------------------
# The cluster and its workload
# --------------------------------------------------------------------------------------


class Cluster:
    def __init__(self, brokers: list[BrokerProcess], starters: ThreadPoolExecutor):
        self.brokers = brokers
        # The threads that started the brokers must outlive them: the brokers die with the
        # thread that forked them (PR_SET_PDEATHSIG is per thread).
        self._starters = starters

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def http_targets(self) -> list[str]:
        return [b.http_url.removeprefix("http://").rstrip("/") for b in self.brokers]

    def stop(self):
        for b in self.brokers:
            b.stop()
        self._starters.shutdown(wait=False)


def start_cluster(tmp: Path, artifacts: Path, n: int = 3) -> Cluster:
    ports = [free_port() for _ in range(n)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
    cluster_id = f"rillprom{uuid.uuid4().hex[:14]}"
    brokers = []
    for i, port in enumerate(ports):
        overrides = dict(BROKER_OVERRIDES)
        overrides.update({
            "cluster.id": cluster_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}",
        })
        brokers.append(BrokerProcess(i + 1, tmp / f"data-{i + 1}", artifacts, overrides))
    # All nodes must run before any can form the quorum and print its ready line, so they
    # start concurrently, one thread each (a barrier makes the pool use n threads).
    starters = ThreadPoolExecutor(max_workers=n, thread_name_prefix="broker-start")
    barrier = threading.Barrier(n, timeout=30)

    def start(b):
        barrier.wait()
        return b.start()

    futures = [starters.submit(start, b) for b in brokers]
    errors = []
    for f in futures:
        try:
            f.result()
        except BaseException as e:  # noqa: BLE001 - pytest.fail raises BaseException
            errors.append(e)
    cluster = Cluster(brokers, starters)
    if errors:
        cluster.stop()
        raise errors[0]
    return cluster


class Workload:
    """What the dashboards chart, made to happen on the cluster:

    - topic `orders` (3 partitions, RF 3) with a producer running in the background
      (≈50 records/s, so rates and time lag have something to measure);
    - group `billing`: a member consuming `orders` and committing, alive until teardown;
    - group `reporting`: consumed part of `orders`, committed, left (lag > 0, no members);
    - a keyless record to compacted topic `compacted` (refused: INVALID_RECORD), so
      failedproducerequests has a series; a fetch past the log end of `orders` (refused:
      OFFSET_OUT_OF_RANGE), so failedfetchrequests has one;
    - for the alert test: `single` (3 partitions, RF 1: one goes offline with its broker) and
      `strict` (RF 3, min.insync.replicas=3: under min ISR once a broker is gone).
    """

    def __init__(self, bootstrap: str):
        from confluent_kafka import Consumer, Producer, TopicPartition
        from confluent_kafka.admin import AdminClient, NewTopic

        self.bootstrap = bootstrap
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futures = admin.create_topics([
            NewTopic("orders", num_partitions=3, replication_factor=3),
            NewTopic("compacted", num_partitions=1, replication_factor=3, config={"cleanup.policy": "compact"}),
            NewTopic("single", num_partitions=3, replication_factor=1),
            NewTopic("strict", num_partitions=1, replication_factor=3, config={"min.insync.replicas": "3"}),
        ], operation_timeout=30)
        self.admin = admin
        for f in futures.values():
            f.result(timeout=60)

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        for i in range(300):
            self.producer.produce("orders", key=f"k{i % 17}".encode(), value=f"order-{i}".encode())
        assert self.producer.flush(60) == 0, "initial records not delivered"

        # A group that read part of the topic, committed and left.
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reporting",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["orders"])
        got = 0
        deadline = time.monotonic() + 60
        while got < 100 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got += 1
        assert got >= 100, f"group reporting read {got} records"
        c.commit(asynchronous=False)
        c.close()

        # A refused produce: compacted topics need keys.
        refused = []
        self.producer.produce("compacted", value=b"no key", on_delivery=lambda err, msg: refused.append(err))
        self.producer.flush(30)
        assert refused and refused[0] is not None, f"keyless record to a compacted topic was accepted: {refused}"

        # A refused fetch: an offset past the log end.
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "out-of-range",
                      "auto.offset.reset": "error", "enable.auto.commit": False})
        c.assign([TopicPartition("orders", 0, 1_000_000)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is not None:
                break
        c.close()

        self.threads = [
            threading.Thread(target=self._produce_forever, name="workload-producer", daemon=True),
            threading.Thread(target=self._consume_forever, name="workload-billing", daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _produce_forever(self):
        i = 0
        while not self.stop_event.wait(0.02):
            try:
                self.producer.produce("orders", key=f"k{i % 17}".encode(), value=f"live-{i}".encode())
                self.producer.poll(0)
            except BufferError:
                self.producer.poll(0.1)
            i += 1
        self.producer.flush(10)

    def _consume_forever(self):
        from confluent_kafka import Consumer

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "billing",
                      "auto.offset.reset": "earliest", "enable.auto.commit": True,
                      "auto.commit.interval.ms": 500, "session.timeout.ms": 10000})
        c.subscribe(["orders"])
        try:
            while not self.stop_event.is_set():
                c.poll(0.2)
        finally:
            c.close()

    def leaders(self, topic: str) -> dict[int, int]:
        """partition → leader node id, from the cluster's metadata."""
        md = self.admin.list_topics(topic, timeout=30)
        return {p: meta.leader for p, meta in md.topics[topic].partitions.items()}

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=20)


# --------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------

BROKER_JOB = "rill-brokers"
CONSOLE_JOB = "rill-console"


def suite_config(broker_targets: list[str], console_target: Optional[str]) -> dict:
    """dashboards/prometheus.yml with this run's targets, 1 s intervals and the absolute path
    of dashboards/alerts.yml. Job names, paths and everything else are kept."""
    config = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config["rule_files"] = [str(DASHBOARDS / f) for f in config.get("rule_files", [])]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {BROKER_JOB, CONSOLE_JOB}, f"dashboards/prometheus.yml jobs changed: {sorted(jobs)}"
    jobs[BROKER_JOB]["static_configs"] = [{"targets": broker_targets}]
    if console_target:
        jobs[CONSOLE_JOB]["static_configs"] = [{"targets": [console_target]}]
    else:
        config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != CONSOLE_JOB]
    return config


def start_prometheus(tmp: Path, artifacts: Path, config: dict) -> Prometheus:
    assert Path(PROMETHEUS).exists(), f"{PROMETHEUS} not found: apt-get install prometheus"
    config_path = artifacts / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    proc = Managed(
        "prometheus",
        [PROMETHEUS, f"--config.file={config_path}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
         "--web.enable-lifecycle"],
        tmp, artifacts / "prometheus.log",
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, config_path)

    def ready():
        proc.check_alive()
        return http_get(f"{prom.url}/-/ready")[0] == 200

    wait_until(ready, START_TIMEOUT_S, "prometheus /-/ready", interval=0.2)
    return prom


def start_console(tmp: Path, artifacts: Path, bootstrap: str, help_text: str) -> tuple[Managed, str]:
    """`rill console --bootstrap ... --listen 127.0.0.1:PORT` with an SQLite store in a fresh
    directory (also its working directory), collecting every second when it has that flag;
    ready once /metrics answers 200."""
    port = free_port()
    workdir = tmp / "console"
    workdir.mkdir()
    args = [str(rill_binary()), "console", "--bootstrap", bootstrap, "--listen", f"127.0.0.1:{port}"]
    if "--database-url" in help_text:
        args += ["--database-url", f"sqlite://{workdir / 'console.db'}"]
    if "--collect-interval-ms" in help_text:
        args += ["--collect-interval-ms", "1000"]
    proc = Managed("rill console", args, workdir, artifacts / "console.log")
    url = f"http://127.0.0.1:{port}"

    def ready():
        proc.check_alive()
        return http_get(f"{url}/metrics")[0] == 200

    wait_until(ready, START_TIMEOUT_S, "rill console /metrics", interval=0.2)
    return proc, f"127.0.0.1:{port}"


class Stack:
    def __init__(self, cluster, workload, prometheus, console_target):
        self.cluster: Cluster = cluster
        self.workload: Workload = workload
        self.prometheus: Prometheus = prometheus
        self.console_target: Optional[str] = console_target
        self.report: list[dict] = []

    @property
    def has_console(self) -> bool:
        return self.console_target is not None
