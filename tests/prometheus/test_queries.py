"""Every PromQL expression in dashboards/ returns data from a real Rill cluster.

One test per expression (dashboard panel targets, `label_values` variable queries, alert
rules), run against Debian's Prometheus scraping 3 brokers (and `rill console` when this
build has it) every second, while a workload runs (see conftest.Workload).

Rules:
- Panel and variable expressions must return a non-empty result (a variable's metric must
  have the variable's label). Grafana variables are replaced by what "All" selects.
- Alert expressions are normally empty on a healthy cluster, so the test evaluates them
  without their trailing threshold comparison (`X > 0` → `X`, see queries.strip_threshold)
  and requires data, and evaluates the whole expression and requires it to be valid PromQL
  that Prometheus runs. `test_alerts_fire_when_a_broker_dies` then makes two of them fire.
- Every metric name an expression selects must be exposed by some target, except:
  * console metrics (kafka_exporter / kafka-lag-exporter names, or `job="rill-console"`):
    required only when `rill console` exists in target/debug/rill; skipped otherwise;
  * queries.PENDING_BROKER_METRICS: skipped while no broker exports them, required as soon
    as one does.
Skips name their reason, so `pytest -rs` lists what was not checked.
"""

from __future__ import annotations

import math
import signal
import time

import pytest

import queries as q
from promstack import wait_until

PER_QUERY_TIMEOUT_S = 20.0
ALL_QUERIES = q.dashboard_queries() + q.alert_queries()


def _gate(stack, expr: str):
    """Skips (with the reason) an expression whose data cannot exist in this run."""
    names = q.metric_names(expr)
    if q.needs_console(expr) and not stack.has_console:
        pytest.skip("needs `rill console` /metrics, and target/debug/rill has no `console` command yet: "
                    + ", ".join(sorted(names & q.CONSOLE_METRICS) or ['job="rill-console"']))
    pending = {n for n in names if n in q.PENDING_BROKER_METRICS}
    if pending:
        exposed = stack.prometheus.metric_names()
        missing = sorted(pending - exposed)
        if missing:
            pytest.skip("brokers do not export it yet: " + ", ".join(
                f"{n} ({q.PENDING_BROKER_METRICS[n]})" for n in missing))


def _record(stack, query: q.Query, promql: str, outcome: str, result=None):
    stack.report.append({
        "id": query.id, "kind": query.kind, "expr": query.expr, "evaluated": promql,
        "outcome": outcome, "series": len(result) if result is not None else None,
    })


@pytest.mark.parametrize("query", ALL_QUERIES, ids=[x.id for x in ALL_QUERIES])
def test_expression_returns_data(stack, query: q.Query):
    promql = q.promql_of(query)
    assert "$" not in promql, f"unsubstituted variable left in {promql!r}"
    if query.kind == "alert":
        # The whole rule expression must run (an empty result is the healthy answer).
        stack.prometheus.query(promql)
        promql = q.strip_threshold(promql)
        assert promql != query.expr.strip(), f"alert {query.where}: no threshold comparison found to strip"
    _gate(stack, promql)

    # Every selected metric is exposed by some target: catches misspelt names, which
    # an expression like `X or vector(0)` would otherwise hide.
    exposed = stack.prometheus.metric_names()
    unknown = sorted(n for n in q.metric_names(promql) if n not in exposed)
    assert not unknown, f"no scraped target exposes {unknown} (expression: {promql})"

    lv = q.label_values(query.expr)
    if lv:
        label = lv[1]

        def labelled():
            series = stack.prometheus.api("series", **{"match[]": promql})
            return [s for s in series if label in s]

        result = wait_until(labelled, PER_QUERY_TIMEOUT_S, f"series of {promql} with label {label}", interval=0.5)
    else:
        result = wait_until(lambda: stack.prometheus.query(promql), PER_QUERY_TIMEOUT_S,
                            f"data for {promql}", interval=0.5)
        # Grafana names each series by its legend: the labels it names must be there.
        for series in result:
            missing = q.legend_labels(query.legend) - set(series.get("metric", {}))
            assert not missing, f"legend {query.legend!r} names {sorted(missing)}, absent from {series}"
    _record(stack, query, promql, "data", result)


def test_every_rule_loaded_and_healthy(stack):
    """Prometheus loaded dashboards/alerts.yml and evaluates every rule without error."""
    expected = {r["alert"] for r in q.alert_rules()}

    def healthy():
        groups = stack.prometheus.api("rules")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        missing = expected - set(rules)
        assert not missing, f"rules not loaded: {sorted(missing)}"
        bad = {n: (r["health"], r.get("lastError")) for n, r in rules.items() if r["health"] != "ok"}
        return not bad or None

    wait_until(healthy, PER_QUERY_TIMEOUT_S, "every rule evaluated with health ok", interval=0.5)


def test_time_lag_is_a_number_when_console_present(stack):
    """The time-lag panels need the console to estimate lag in seconds; with a committed
    group and a live producer the estimate becomes a finite number."""
    if not stack.has_console:
        pytest.skip("needs `rill console` /metrics (kafka_consumergroup_group_max_lag_seconds)")

    def finite():
        rows = stack.prometheus.query('kafka_consumergroup_group_max_lag_seconds{group="reporting"}')
        return [r for r in rows if math.isfinite(float(r["value"][1]))]

    wait_until(finite, 60, "a finite max lag in seconds for group reporting", interval=1)


def test_brokers_accept_the_compose_settings(stack):
    """The cluster runs with docker-compose.yml's broker settings (conftest.BROKER_OVERRIDES);
    no broker warned about an unknown key."""
    from promstack import COMPOSE_ADDRESS_KEYS, compose_overrides

    applied = {k for k in compose_overrides() if k not in COMPOSE_ADDRESS_KEYS}
    assert applied, "docker-compose.yml brokers set nothing but addresses?"
    for b in stack.cluster.brokers:
        log = b.stderr_path.read_text(errors="replace")
        warned = [line for line in log.splitlines() if "unknown configuration key" in line]
        assert not warned, f"broker {b.node_id}: {warned}"


def test_alerts_fire_when_a_broker_dies(stack):
    """SIGKILL one broker (one that leads a partition of the RF-1 topic `single`): Prometheus
    must put RillBrokerDown, RillUnderReplicatedPartitions and RillOfflinePartitions in
    pending (or firing), and RillUnderMinIsrPartitions too (topic `strict`, min ISR 3) when
    the brokers export the min-ISR gauges (`..._atminisrpartitioncount` came with them; before
    that `..._underminisrpartitioncount` was always 0). Runs last: it leaves two nodes."""
    leaders = set(stack.workload.leaders("single").values())
    victim = next(b for b in reversed(stack.cluster.brokers) if b.node_id in leaders)
    want = {"RillBrokerDown", "RillUnderReplicatedPartitions", "RillOfflinePartitions"}
    if "kafka_server_replicamanager_atminisrpartitioncount" in stack.prometheus.metric_names():
        want.add("RillUnderMinIsrPartitions")
    victim.kill()
    started = time.monotonic()

    def active():
        alerts = stack.prometheus.api("alerts")["alerts"]
        states = {a["labels"]["alertname"]: a["state"] for a in alerts}
        return want <= set(states) and states

    states = wait_until(active, 60, f"alerts {sorted(want)} pending or firing", interval=0.5)
    assert all(states[a] in ("pending", "firing") for a in want), states
    stack.report.append({"id": "alerts fire on SIGKILL", "kind": "alert-state", "states": states,
                         "expected": sorted(want), "seconds": round(time.monotonic() - started, 1)})
    assert victim.proc.returncode == -signal.SIGKILL
