"""Fixtures for the interop suite: real `rill-broker` processes on ephemeral ports.

The broker contract (see tests/interop/README.md):

    rill-broker --override node.id=1 \
                --override listeners=PLAINTEXT://127.0.0.1:0 \
                --override http.listener=127.0.0.1:0 \
                --override log.dirs=<dir>

prints one line on stdout when it is ready to serve:

    rill-broker ready: node=1 kafka=127.0.0.1:PORT http=http://127.0.0.1:PORT controller=127.0.0.1:PORT

Broker stderr (its logs) and stdout are kept per test under
tests/artifacts/interop/<test>/, and the tail of stderr is attached to the report of a
failing test.
"""

from __future__ import annotations

import ctypes
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_ROOT = REPO_ROOT / "tests" / "artifacts" / "interop"

READY_TIMEOUT_S = float(os.environ.get("RILL_READY_TIMEOUT", "30"))
STOP_TIMEOUT_S = 15.0

READY_RE = re.compile(
    r"^rill-broker ready: node=(?P<node>\d+) "
    r"kafka=(?P<kafka_host>[^\s:]+):(?P<kafka_port>\d+) "
    r"http=(?P<http>\S+)(?:\s+\w+=\S+)*\s*$"
)


def rill_bin() -> str:
    """The admin CLI: $RILL_BIN, else <repo>/target/debug/rill."""
    override = os.environ.get("RILL_BIN")
    if override:
        return override
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    return str(base / "debug" / "rill")


def broker_binary() -> Path:
    """The broker binary: $RILL_BROKER_BIN, else <repo>/target/debug/rill-broker."""
    override = os.environ.get("RILL_BROKER_BIN")
    if override:
        return Path(override)
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO_ROOT / "target"
    if not base.is_absolute():
        base = REPO_ROOT / base
    return base / "debug" / "rill-broker"


def _set_pdeathsig() -> None:
    """In the child: die with the test process, so a killed pytest leaves no broker behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<no file>"
    out = text.splitlines()[-lines:]
    return "\n".join(out) if out else "<empty>"


def wait_until(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll `cond` until it returns a truthy value or `timeout` seconds pass.

    Exceptions raised by `cond` count as "not yet"; the last one is reported on timeout.
    Returns the truthy value.
    """
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    last_val: object = None
    while True:
        try:
            last_val = cond()
            if last_val:
                return last_val
        except Exception as exc:  # noqa: BLE001 - polled condition
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc!r}" if last_exc else f"; last value: {last_val!r}"
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def free_port() -> int:
    """A port nothing listens on now, below the kernel's ephemeral range: it is bound later
    by a broker, and an ephemeral port can be taken meanwhile by any outgoing connection.
    Bounded tries, then the kernel's choice."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    floor = min(10000, low - 1000)
    for _ in range(200):
        port = random.randrange(floor, low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class BrokerProcess:
    """One rill-broker process with its own data dir; can be stopped, killed and restarted."""

    def __init__(self, node_id: int, data_dir: Path, artifacts: Path, extra_overrides=None):
        self.node_id = node_id
        self.data_dir = data_dir
        self.artifacts = artifacts
        self.extra_overrides = dict(extra_overrides or {})
        self.proc: Optional[subprocess.Popen] = None
        self.generation = 0
        self.listeners: dict = {}
        self.kafka_host: Optional[str] = None
        self.kafka_port: Optional[int] = None
        self.http_url: Optional[str] = None
        self.stderr_path = artifacts / f"broker-{node_id}.stderr.log"
        self.stdout_path = artifacts / f"broker-{node_id}.stdout.log"
        self._reader: Optional[threading.Thread] = None
        self._expected_exit = False

    # -- addresses ---------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        assert self.kafka_port is not None, "broker not started"
        return f"{self.kafka_host}:{self.kafka_port}"

    # -- lifecycle ---------------------------------------------------------------------
    def command(self):
        args = [
            str(broker_binary()),
            "--override", f"node.id={self.node_id}",
            "--override", "listeners=PLAINTEXT://127.0.0.1:0",
            "--override", "http.listener=127.0.0.1:0",
            "--override", f"log.dirs={self.data_dir}",
        ]
        for key, value in self.extra_overrides.items():
            args += ["--override", f"{key}={value}"]
        return args

    def start(self) -> "BrokerProcess":
        binary = broker_binary()
        if not binary.exists():
            pytest.fail(
                f"broker binary not found at {binary}; build it with "
                f"`cargo build -p rill-broker --bin rill-broker` or set RILL_BROKER_BIN",
                pytrace=False,
            )
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.generation += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.kafka_host = self.kafka_port = self.http_url = None
        self._expected_exit = False

        stderr_file = open(self.stderr_path, "ab")
        stderr_file.write(f"===== start #{self.generation}: {' '.join(self.command())}\n".encode())
        stderr_file.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("RILL_LOG", "info")
        env.setdefault("NO_COLOR", "1")  # plain log files
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                cwd=str(self.data_dir.parent),
                env=env,
                preexec_fn=_set_pdeathsig,
            )
        finally:
            stderr_file.close()

        lines: "queue.Queue[Optional[str]]" = queue.Queue()
        proc = self.proc
        generation = self.generation

        def pump():
            with open(self.stdout_path, "a", encoding="utf-8", errors="replace") as out:
                out.write(f"===== start #{generation}\n")
                for raw in iter(proc.stdout.readline, b""):
                    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                    out.write(line + "\n")
                    out.flush()
                    lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=pump, name=f"rill-broker-{self.node_id}-stdout", daemon=True)
        self._reader.start()

        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(
                    f"rill-broker node {self.node_id} printed no ready line within "
                    f"{READY_TIMEOUT_S:.0f}s.\nstdout tail:\n{tail(self.stdout_path, 20)}\n"
                    f"stderr tail:\n{tail(self.stderr_path)}",
                    pytrace=False,
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = proc.wait(timeout=STOP_TIMEOUT_S)
                self._expected_exit = True  # reported here, not again at teardown
                pytest.fail(
                    f"rill-broker node {self.node_id} exited with code {code} before it was "
                    f"ready.\nstderr tail:\n{tail(self.stderr_path)}",
                    pytrace=False,
                )
            m = READY_RE.match(line)
            if m:
                assert int(m.group("node")) == self.node_id, f"ready line names wrong node: {line!r}"
                self.kafka_host = m.group("kafka_host")
                self.kafka_port = int(m.group("kafka_port"))
                self.http_url = m.group("http")
                assert self.kafka_port > 0, f"ready line has port 0: {line!r}"
                # listeners=NAME@host:port,... : every client listener's address.
                self.listeners = {}
                lm = re.search(r"\blisteners=(\S+)", line)
                for item in (lm.group(1).split(",") if lm else []):
                    name, _, addr = item.partition("@")
                    self.listeners[name] = addr
                return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        self._expected_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note(f"did not exit within {timeout:.0f}s of SIGTERM; sending SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self._join_reader()
        return self.proc.returncode

    def kill(self) -> Optional[int]:
        """SIGKILL (an unclean stop)."""
        if self.proc is None:
            return None
        self._expected_exit = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._join_reader()
        return self.proc.returncode

    def restart(self, clean: bool = True) -> "BrokerProcess":
        """Stop (SIGTERM, or SIGKILL when clean=False) and start again on the same data dir."""
        if clean:
            code = self.stop()
            assert code == 0, (
                f"rill-broker node {self.node_id} exited with code {code} on SIGTERM; "
                f"stderr tail:\n{tail(self.stderr_path)}"
            )
        else:
            self.kill()
        return self.start()

    def unexpected_exit(self) -> Optional[int]:
        """The exit code if the process died without being asked to."""
        if self.proc is not None and not self._expected_exit:
            return self.proc.poll()
        return None

    def _join_reader(self):
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def _note(self, msg: str):
        with open(self.stderr_path, "a") as f:
            f.write(f"===== test harness: {msg}\n")


def _artifact_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.replace("tests/interop/", ""))
    path = ARTIFACTS_ROOT / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def broker_factory(request, tmp_path):
    """Make brokers: `broker_factory(node_id=1, overrides={...})` returns a started broker.

    Every broker is stopped at teardown; one that died on its own during the test makes
    the test error with the exit code and its stderr tail.
    """
    artifacts = _artifact_dir(request)
    brokers: list[BrokerProcess] = []
    request.node._rill_brokers = brokers

    def make(node_id: int = 1, overrides=None, start: bool = True) -> BrokerProcess:
        b = BrokerProcess(node_id, tmp_path / f"data-{node_id}", artifacts, overrides)
        brokers.append(b)
        return b.start() if start else b

    yield make

    problems = []
    for b in brokers:
        code = b.unexpected_exit()
        if code is not None:
            problems.append(
                f"rill-broker node {b.node_id} died during the test with exit code {code}; "
                f"stderr tail:\n{tail(b.stderr_path)}"
            )
        b.stop()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def broker(broker_factory) -> BrokerProcess:
    """A started single-node broker (node 1) on a fresh data dir."""
    return broker_factory(1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in getattr(item, "_rill_brokers", []):
            report.sections.append(
                (f"rill-broker node {b.node_id} stderr tail ({b.stderr_path})", tail(b.stderr_path, 40))
            )
