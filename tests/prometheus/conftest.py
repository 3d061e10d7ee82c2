"""Fixtures of the Prometheus suite; the harness itself is promstack.py (a module name of
its own, so `pytest tests/` with the interop suite's conftest beside it stays unambiguous)."""

from __future__ import annotations

import json
import shutil
from typing import Optional

import pytest

from promstack import (ARTIFACTS, START_TIMEOUT_S, Managed, Stack, console_help, start_cluster,
                       start_console, start_prometheus, suite_config, wait_until, Workload)


@pytest.fixture(scope="session")
def console_help_text() -> Optional[str]:
    return console_help()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, console_help_text):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("prom")
    managed: list[Managed] = []
    cluster = workload = None
    try:
        cluster = start_cluster(tmp, ARTIFACTS)
        workload = Workload(cluster.bootstrap)
        console_target = None
        if console_help_text is not None:
            proc, console_target = start_console(tmp, ARTIFACTS, cluster.bootstrap, console_help_text)
            managed.append(proc)
        prom = start_prometheus(tmp, ARTIFACTS, suite_config(cluster.http_targets(), console_target))
        managed.append(prom.proc)
        s = Stack(cluster, workload, prom, console_target)

        def targets_up():
            active = prom.api("targets", state="active")["activeTargets"]
            return len(active) == len(cluster.brokers) + (1 if console_target else 0) and all(
                t["health"] == "up" for t in active)

        wait_until(targets_up, START_TIMEOUT_S, "every scrape target up", interval=0.25)
        yield s
        (ARTIFACTS / "report.json").write_text(json.dumps({
            "console": console_target is not None,
            "expressions": s.report,
        }, indent=2))
    finally:
        if workload is not None:
            workload.stop()
        for m in reversed(managed):
            m.stop()
        if cluster is not None:
            cluster.stop()
