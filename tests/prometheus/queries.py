"""The PromQL expressions shipped in dashboards/: where they are, how to run them, what they need.

- `dashboard_queries()`: every panel target's `expr` and every `label_values(...)` variable
  query of dashboards/*.json.
- `alert_rules()`: every rule of dashboards/alerts.yml.
- `substitute()`: Grafana's variables replaced by what "All" selects (`.*`) and
  `$__rate_interval` by a fixed window, so the expression runs in Prometheus as it is.
- `strip_threshold()`: an alert expression without its trailing comparison with a number
  (`... > 0`, `... != 1`, `... < 1`): alerts are normally quiet, so the test checks that the
  quantity they compare has data, and separately that the whole expression evaluates.
- `metric_names()`: the metric names an expression selects, to say which ones no target
  exposes and to gate expressions on where their metrics come from (see `requirement()`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO_ROOT / "dashboards"

RATE_WINDOW = "1m"

# kafka_exporter's and kafka-lag-exporter's names, served by `rill console` /metrics only.
CONSOLE_METRICS = frozenset(
    {
        "kafka_brokers",
        "kafka_broker_info",
        "kafka_topic_partitions",
        "kafka_topic_partition_current_offset",
        "kafka_topic_partition_oldest_offset",
        "kafka_topic_partition_leader",
        "kafka_topic_partition_replicas",
        "kafka_topic_partition_in_sync_replica",
        "kafka_topic_partition_leader_is_preferred",
        "kafka_topic_partition_under_replicated_partition",
        "kafka_consumergroup_current_offset",
        "kafka_consumergroup_current_offset_sum",
        "kafka_consumergroup_lag",
        "kafka_consumergroup_lag_sum",
        "kafka_consumergroup_members",
        "kafka_consumergroup_group_offset",
        "kafka_consumergroup_group_lag",
        "kafka_consumergroup_group_lag_seconds",
        "kafka_consumergroup_group_max_lag",
        "kafka_consumergroup_group_max_lag_seconds",
        "kafka_consumergroup_group_sum_lag",
        "kafka_consumergroup_group_topic_sum_lag",
        "kafka_partition_latest_offset",
        "kafka_partition_earliest_offset",
    }
)

# Broker metrics with Strimzi's names that the dashboards already chart but that brokers of
# this checkout may not export yet (being added on main). An expression using one is
# skipped, with this reason, only while no scraped broker exposes it; once a broker does,
# the expression is required like any other.
PENDING_BROKER_METRICS = {
    "kafka_server_replicamanager_isrshrinks_total": "ISR shrink counter",
    "kafka_server_replicamanager_isrexpands_total": "ISR expand counter",
    "kafka_server_brokertopicmetrics_replicationbytesin_total": "replication bytes-in counter",
    "kafka_server_brokertopicmetrics_replicationbytesout_total": "replication bytes-out counter",
    "kafka_server_replicamanager_atminisrpartitioncount": "at-min-ISR gauge",
}

_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
     "and", "or", "unless", "inf", "nan", "Inf", "NaN", "atan2", "start", "end"}
)


@dataclass(frozen=True)
class Query:
    source: str  # file name
    where: str  # panel title / variable / rule name, and refId
    expr: str  # as written in the file
    kind: str  # "panel", "variable", "alert"
    legend: str = ""  # a panel target's legendFormat

    @property
    def id(self) -> str:
        return f"{self.source}:{self.where}"


# --------------------------------------------------------------------------------------
# Finding the expressions
# --------------------------------------------------------------------------------------


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def _panels(panels):
    for p in panels or []:
        yield p
        yield from _panels(p.get("panels"))  # rows (collapsed ones keep their panels)


def dashboard_queries() -> list[Query]:
    out = []
    for path in dashboard_files():
        dash = json.loads(path.read_text())
        for panel in _panels(dash.get("panels")):
            for t in panel.get("targets") or []:
                if t.get("expr"):
                    out.append(Query(path.name, f"{panel.get('title')} [{t.get('refId')}]", t["expr"], "panel",
                                     t.get("legendFormat", "")))
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            q = var.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                out.append(Query(path.name, f"variable ${var['name']}", q, "variable"))
    return out


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((DASHBOARDS / "alerts.yml").read_text())
    rules = []
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                rules.append(rule)
    return rules


def alert_queries() -> list[Query]:
    return [Query("alerts.yml", r["alert"], r["expr"], "alert") for r in alert_rules()]


# --------------------------------------------------------------------------------------
# Turning them into plain PromQL
# --------------------------------------------------------------------------------------

_VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES_RE = re.compile(r"^\s*label_values\(\s*(?P<expr>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$", re.S)


def substitute(expr: str) -> str:
    """Grafana's variables → values Prometheus accepts: `$__rate_interval` → a window,
    every dashboard variable → `.*` (what the "All" option selects; dashboards use them
    only inside `=~"..."` matchers)."""

    def repl(m):
        name = m.group(1) or m.group(2)
        if name in ("__rate_interval", "__interval", "__range"):
            return RATE_WINDOW
        if name.startswith("__"):
            raise ValueError(f"unsupported Grafana variable ${name} in {expr!r}")
        return ".*"

    return _VAR_RE.sub(repl, expr)


def label_values(expr: str) -> Optional[tuple[str, str]]:
    """`label_values(metric_selector, label)` → (selector, label); None for other queries."""
    m = _LABEL_VALUES_RE.match(expr)
    return (m.group("expr"), m.group("label")) if m else None


_THRESHOLD_RE = re.compile(
    r"^(?P<quantity>.*?)\s*(?:>=|<=|==|!=|>|<)\s*(?:bool\s+)?[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?\s*$",
    re.S | re.I,
)


def strip_threshold(expr: str) -> str:
    """The quantity an alert compares: `X > 0` → `X`. An expression with no trailing
    comparison to a number is returned as it is."""
    m = _THRESHOLD_RE.match(expr.strip())
    return m.group("quantity").strip() if m else expr.strip()


def metric_names(expr: str) -> set[str]:
    """Metric names selected by an expression (not functions, keywords or label names)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        if s[m.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if tok in _KEYWORDS:
            continue
        names.add(tok)
    return names


def legend_labels(legend: str) -> set[str]:
    """Labels a legendFormat names (`{{topic}}/{{partition}}` → {topic, partition})."""
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))


def needs_console(expr: str) -> bool:
    """True when the expression's data comes from `rill console` /metrics."""
    return bool(metric_names(expr) & CONSOLE_METRICS) or 'job="rill-console"' in expr


def promql_of(q: Query) -> str:
    """What the test sends to Prometheus for this query (before threshold stripping)."""
    lv = label_values(q.expr)
    return substitute(lv[0] if lv else q.expr)
