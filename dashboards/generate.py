#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder (rill-*.json) from the definitions below.

    python3 dashboards/generate.py          # rewrite the JSON files
    python3 dashboards/generate.py --check  # exit 1 if a JSON file is not what this writes

The JSON files are committed (Grafana provisions them as they are); this script is how they
are edited, so every dashboard shares one layout, one datasource variable and one style.
tests/prometheus checks that the files are current and that every expression in them
returns data from real brokers (and the console, when it is built).

Metric families used:
- brokers (`/metrics` on each broker's HTTP listener): the JMX-exporter names of Strimzi's
  dashboards, see broker/src/metrics.rs;
- console (`rill console` `/metrics`): kafka_exporter's names (`kafka_topic_partition_*`,
  `kafka_consumergroup_*` with label `consumergroup`) and kafka-lag-exporter's
  (`kafka_consumergroup_group_*` with label `group`, `kafka_partition_*_offset`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
RATE = "$__rate_interval"

# --------------------------------------------------------------------------------------
# Panel builders
# --------------------------------------------------------------------------------------


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, table: bool = False):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend or "__auto"}
    if instant:
        t["instant"] = True
        t["range"] = False
    if table:
        t["format"] = "table"
    return t


def rate_by(by: str, metric: str, selector: str = ""):
    """`sum by (<by>) (rate(<metric>{<selector>}[$__rate_interval]))`, one series per `by` value."""
    sel = f"{{{selector}}}" if selector else ""
    return target(f"sum by ({by}) (rate({metric}{sel}[{RATE}]))", f"{{{{{by}}}}}")


def thresholds(*steps):
    """steps: (value, color) pairs; the first value is None (the base)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


GREEN_IF_ZERO = thresholds((None, "green"), (1, "red"))


def timeseries(title, targets, unit="short", desc="", w=12, h=8, stack=False, min0=True):
    defaults = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": True,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
        "color": {"mode": "palette-classic"},
    }
    if min0:
        defaults["min"] = 0
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "_size": (w, h),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(title, expr, unit="short", desc="", th=None, w=4, h=4, legend=""):
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "_size": (w, h),
        "targets": [target(expr, legend, instant=True)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": th or thresholds((None, "blue")),
                "color": {"mode": "thresholds"},
                "noValue": "no data",
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
    }


def table(title, columns, desc="", w=24, h=8, by=("topic", "partition")):
    """columns: (header, expr) pairs, joined on the `by` labels."""
    targets = []
    rename = {}
    for i, (header, expr) in enumerate(columns):
        ref = chr(ord("A") + i)
        targets.append(target(expr, ref=ref, instant=True, table=True))
        rename[f"Value #{ref}"] = header
    return {
        "type": "table",
        "title": title,
        "description": desc,
        "datasource": DS,
        "_size": (w, h),
        "targets": targets,
        "fieldConfig": {"defaults": {"custom": {"align": "auto"}}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True, "__name__": True, "job": True},
                    "renameByName": rename,
                    "indexByName": {**{lbl: i for i, lbl in enumerate(by)}},
                },
            },
        ],
    }


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def query_var(name, label, query, multi=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-query", "qryType": 1},
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


DS_VAR = {
    "name": "DS_PROMETHEUS",
    "label": "Data source",
    "type": "datasource",
    "query": "prometheus",
    "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
    "hide": 0,
    "refresh": 1,
    "regex": "",
    "options": [],
}

INSTANCE_VAR = query_var(
    "instance", "Broker", "label_values(kafka_server_replicamanager_partitioncount, instance)"
)
TOPIC_VAR = query_var("topic", "Topic", "label_values(kafka_log_log_size, topic)")
GROUP_VAR = query_var(
    "consumergroup", "Consumer group", "label_values(kafka_consumergroup_members, consumergroup)"
)


def layout(panels):
    """Assigns ids and gridPos left to right, wrapping at Grafana's 24 columns."""
    x = y = 0
    row_h = 0
    out = []
    for i, p in enumerate(panels, start=1):
        p = dict(p)
        w, h = p.pop("_size")
        if p["type"] == "row" or x + w > 24:
            x, y = 0, y + row_h
            row_h = 0
        p["id"] = i
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        if not p.get("description"):
            p.pop("description", None)
        out.append(p)
        x += w
        row_h = max(row_h, h)
        if p["type"] == "row":
            x, y, row_h = 0, y + h, 0
    return out


def dashboard(uid, title, description, panels, variables):
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "annotations": {"list": []},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {"type": "dashboards", "tags": ["rill"], "asDropdown": True, "title": "Rill dashboards",
             "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False,
             "tooltip": "", "url": ""}
        ],
        "panels": layout(panels),
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["rill", "kafka"],
        "templating": {"list": [DS_VAR, *variables]},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --------------------------------------------------------------------------------------
# Dashboards
# --------------------------------------------------------------------------------------

# Kafka's controller reports offline partitions on the active controller only (others 0);
# max() is right whether other nodes report 0 or the same count.
OFFLINE = "max(kafka_controller_kafkacontroller_offlinepartitionscount)"
OFFLINE_DESC = "Partitions without a leader: unreadable and unwritable until a replica returns."

B = 'instance=~"$instance"'
T = 'topic=~"$topic"'
G = 'consumergroup=~"$consumergroup"'
LG = 'group=~"$consumergroup"'  # kafka-lag-exporter names the same label `group`


def overview():
    return dashboard(
        "rill-overview",
        "Rill / Cluster overview",
        "Cluster health at a glance: brokers, controller, partition health, throughput. "
        "Broker metrics come from every broker's /metrics; topic, group and lag totals from "
        "the console's /metrics (kafka_exporter names).",
        [
            row("Health"),
            stat("Brokers online", "count(kafka_server_replicamanager_leadercount)",
                 desc="Brokers whose /metrics is scraped (Strimzi's definition)."),
            stat("Brokers in metadata", "kafka_brokers",
                 desc="Brokers the cluster metadata lists (console, kafka_exporter)."),
            stat("Active controllers", "sum(kafka_controller_kafkacontroller_activecontrollercount)",
                 th=thresholds((None, "red"), (1, "green"), (2, "red")),
                 desc="Exactly one node must be the active controller (the Raft leader)."),
            stat("Offline partitions", OFFLINE, th=GREEN_IF_ZERO, desc=OFFLINE_DESC),
            stat("Under-replicated partitions",
                 "sum(kafka_server_replicamanager_underreplicatedpartitions)", th=GREEN_IF_ZERO),
            stat("Under min ISR partitions",
                 "sum(kafka_server_replicamanager_underminisrpartitioncount)", th=GREEN_IF_ZERO),
            stat("At min ISR partitions",
                 "sum(kafka_server_replicamanager_atminisrpartitioncount)",
                 th=thresholds((None, "green"), (1, "orange")),
                 desc="One more replica lost and acks=all producers to these partitions fail."),
            stat("Topics", "count(kafka_topic_partitions)", desc="From the console."),
            stat("Partitions", "sum(kafka_topic_partitions)", desc="From the console."),
            stat("Replicas hosted", "sum(kafka_server_replicamanager_partitioncount)"),
            stat("Leaders", "sum(kafka_server_replicamanager_leadercount)"),
            stat("Consumer groups", "count(kafka_consumergroup_members)", desc="From the console."),
            stat("Max time lag", "max(kafka_consumergroup_group_max_lag_seconds)", unit="s", w=8,
                 th=thresholds((None, "green"), (60, "orange"), (300, "red")),
                 desc="Largest consumer-group lag in seconds (console, kafka-lag-exporter name)."),
            stat("Brokers scraped", 'sum(up{job="rill-brokers"})', w=8,
                 th=thresholds((None, "red"), (1, "green")),
                 desc="Broker /metrics endpoints Prometheus reached at the last scrape."),
            stat("ISR shrinks (1h)", "sum(increase(kafka_server_replicamanager_isrshrinks_total[1h]))",
                 th=thresholds((None, "green"), (1, "orange")), w=8),
            row("Throughput"),
            timeseries("Bytes in / out",
                       [target(f"sum(rate(kafka_server_brokertopicmetrics_bytesin_total[{RATE}]))", "in"),
                        target(f"sum(rate(kafka_server_brokertopicmetrics_bytesout_total[{RATE}]))", "out", "B")],
                       unit="Bps", desc="Bytes appended by producers and sent to fetchers, all brokers."),
            timeseries("Messages in by topic",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_messagesin_total")], unit="rps"),
            timeseries("Requests by API",
                       [rate_by("request", "kafka_network_requestmetrics_requests_total")], unit="reqps"),
            timeseries("Client connections",
                       [target("sum by (instance) (kafka_server_socket_server_metrics_connection_count)",
                               "{{instance}}")]),
            row("Scrape targets"),
            timeseries("Targets up",
                       [target('sum by (job) (up{job=~"rill-brokers|rill-console"})', "{{job}}")],
                       desc="Scrape targets answering, per job (rill-brokers, rill-console)."),
            timeseries("Total consumer lag (messages)",
                       [target("sum(kafka_consumergroup_lag_sum)", "lag")],
                       desc="Sum of every group's offset lag (console; partitions without a commit excluded)."),
        ],
        [],
    )


def topics():
    return dashboard(
        "rill-topics",
        "Rill / Topics",
        "Per-topic throughput, request rates, sizes and partition state.",
        [
            row("Throughput"),
            timeseries("Messages in",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_messagesin_total", T)], unit="rps"),
            timeseries("Bytes in",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_bytesin_total", T)], unit="Bps"),
            timeseries("Bytes out",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_bytesout_total", T)], unit="Bps",
                       desc="Bytes sent to fetchers (consumers and followers)."),
            timeseries("End offset growth (console)",
                       [rate_by("topic", "kafka_topic_partition_current_offset", T)], unit="rps",
                       desc="Rate of the partitions' newest offsets, as kafka_exporter's dashboard computes messages/s."),
            row("Requests"),
            timeseries("Produce requests",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_totalproducerequests_total", T)], unit="reqps"),
            timeseries("Failed produce requests",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_failedproducerequests_total", T)], unit="reqps",
                       desc="Series appear once a topic has had a failed produce."),
            timeseries("Fetch requests",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_totalfetchrequests_total", T)], unit="reqps"),
            timeseries("Failed fetch requests",
                       [rate_by("topic", "kafka_server_brokertopicmetrics_failedfetchrequests_total", T)], unit="reqps",
                       desc="Series appear once a topic has had a failed fetch (e.g. offset out of range)."),
            row("Size"),
            timeseries("Log size (one replica per partition)",
                       [target(f"sum by (topic) (max by (topic, partition) (kafka_log_log_size{{{T}}}))",
                               "{{topic}}")], unit="bytes"),
            timeseries("Log segments (all replicas)",
                       [target(f"sum by (topic) (kafka_log_log_numlogsegments{{{T}}})", "{{topic}}")]),
            timeseries("Records retained (console)",
                       [target(f"sum by (topic) (kafka_topic_partition_current_offset{{{T}}} - kafka_topic_partition_oldest_offset{{{T}}})",
                               "{{topic}}")],
                       desc="Newest minus oldest offset (compaction and transactions make this an upper bound)."),
            timeseries("Partitions (console)",
                       [target(f"kafka_topic_partitions{{{T}}}", "{{topic}}")]),
            row("Partitions"),
            stat("Under-replicated partitions (console)",
                 f"sum(kafka_topic_partition_under_replicated_partition{{{T}}})", th=GREEN_IF_ZERO),
            stat("Partitions not on preferred leader (console)",
                 f"sum(kafka_topic_partition_leader_is_preferred{{{T}}} < bool 1)",
                 th=thresholds((None, "green"), (1, "orange"))),
            stat("Replicas (console)", f"sum(kafka_topic_partition_replicas{{{T}}})"),
            stat("In-sync replicas (console)", f"sum(kafka_topic_partition_in_sync_replica{{{T}}})"),
            table("Partition offsets (brokers)",
                  [("Log start offset", f"max by (topic, partition) (kafka_log_log_logstartoffset{{{T}}})"),
                   ("Log end offset", f"max by (topic, partition) (kafka_log_log_logendoffset{{{T}}})"),
                   ("Size (bytes)", f"max by (topic, partition) (kafka_log_log_size{{{T}}})")],
                  desc="Max over the replicas of each partition.", w=12),
            table("Partition state (console)",
                  [("Leader", f"max by (topic, partition) (kafka_topic_partition_leader{{{T}}})"),
                   ("Replicas", f"max by (topic, partition) (kafka_topic_partition_replicas{{{T}}})"),
                   ("ISR", f"max by (topic, partition) (kafka_topic_partition_in_sync_replica{{{T}}})"),
                   ("Preferred leader", f"max by (topic, partition) (kafka_topic_partition_leader_is_preferred{{{T}}})")],
                  w=12),
        ],
        [TOPIC_VAR],
    )


def consumer_lag():
    return dashboard(
        "rill-consumer-lag",
        "Rill / Consumer lag",
        "Consumer-group lag in messages and in seconds, from the console's /metrics "
        "(kafka_exporter and kafka-lag-exporter names). Partitions without a committed "
        "offset report -1 and are left out of sums.",
        [
            row("Time lag"),
            timeseries("Max time lag by group",
                       [target(f"max by (group) (kafka_consumergroup_group_max_lag_seconds{{{LG}}})", "{{group}}")],
                       unit="s", desc="How far behind the newest record each group's slowest partition is, in seconds."),
            timeseries("Time lag by partition (top 25)",
                       [target(f"topk(25, kafka_consumergroup_group_lag_seconds{{{LG}}})",
                               "{{group}} {{topic}}/{{partition}}")], unit="s"),
            row("Offset lag"),
            timeseries("Lag by group and topic",
                       [target(f"sum by (consumergroup, topic) (kafka_consumergroup_lag_sum{{{G}}})",
                               "{{consumergroup}} {{topic}}")]),
            timeseries("Max partition lag by group",
                       [target(f"max by (group) (kafka_consumergroup_group_max_lag{{{LG}}})", "{{group}}")]),
            timeseries("Total lag by group",
                       [target(f"sum by (group) (kafka_consumergroup_group_sum_lag{{{LG}}})", "{{group}}")]),
            timeseries("Members by group",
                       [target(f"kafka_consumergroup_members{{{G}}}", "{{consumergroup}}")]),
            row("Rates"),
            timeseries("Consume rate by group and topic",
                       [target(f"sum by (consumergroup, topic) (deriv(kafka_consumergroup_current_offset_sum{{{G}}}[{RATE}]))",
                               "{{consumergroup}} {{topic}}")], unit="rps",
                       desc="Growth of the committed offsets per second."),
            timeseries("Produce rate by topic",
                       [target(f"sum by (topic) (deriv(kafka_partition_latest_offset[{RATE}]))", "{{topic}}")],
                       unit="rps", desc="Growth of the partitions' latest offsets per second."),
            row("Partitions"),
            table("Committed offset and lag by partition",
                  [("Committed offset", f"max by (consumergroup, topic, partition) (kafka_consumergroup_current_offset{{{G}}})"),
                   ("Lag", f"max by (consumergroup, topic, partition) (kafka_consumergroup_lag{{{G}}})")],
                  by=("consumergroup", "topic", "partition"), w=12, h=10),
            table("Time lag by partition",
                  [("Lag (s)", f"max by (group, topic, partition) (kafka_consumergroup_group_lag_seconds{{{LG}}})")],
                  by=("group", "topic", "partition"), w=12, h=10),
            table("Partition offsets",
                  [("Earliest", "max by (topic, partition) (kafka_partition_earliest_offset)"),
                   ("Latest", "max by (topic, partition) (kafka_partition_latest_offset)")],
                  w=24, h=8),
        ],
        [GROUP_VAR],
    )


def brokers():
    return dashboard(
        "rill-brokers",
        "Rill / Brokers",
        "Per-broker request rates and latency, partitions and leadership, replication.",
        [
            row("Requests"),
            timeseries("Requests by API",
                       [rate_by("request", "kafka_network_requestmetrics_requests_total", B)], unit="reqps"),
            timeseries("Requests by broker",
                       [rate_by("instance", "kafka_network_requestmetrics_requests_total", B)], unit="reqps"),
            timeseries("Request latency p99 by API",
                       [target(f"histogram_quantile(0.99, sum by (le, request) (rate(rill_request_duration_seconds_bucket{{{B}}}[{RATE}])))",
                               "{{request}}")], unit="s",
                       desc="Arrival to response queued (acks=all produce includes replication)."),
            timeseries("Request latency p50 by API",
                       [target(f"histogram_quantile(0.5, sum by (le, request) (rate(rill_request_duration_seconds_bucket{{{B}}}[{RATE}])))",
                               "{{request}}")], unit="s"),
            timeseries("Mean request latency by broker",
                       [target(f"sum by (instance) (rate(rill_request_duration_seconds_sum{{{B}}}[{RATE}])) / "
                               f"sum by (instance) (rate(rill_request_duration_seconds_count{{{B}}}[{RATE}]))",
                               "{{instance}}")], unit="s"),
            timeseries("Client connections",
                       [target(f"kafka_server_socket_server_metrics_connection_count{{{B}}}", "{{instance}}")]),
            row("Partitions and leadership"),
            timeseries("Partitions hosted",
                       [target(f"kafka_server_replicamanager_partitioncount{{{B}}}", "{{instance}}")]),
            timeseries("Leaders",
                       [target(f"kafka_server_replicamanager_leadercount{{{B}}}", "{{instance}}")]),
            timeseries("Under-replicated partitions (led)",
                       [target(f"kafka_server_replicamanager_underreplicatedpartitions{{{B}}}", "{{instance}}")]),
            timeseries("Under / at min ISR partitions (led)",
                       [target(f"kafka_server_replicamanager_underminisrpartitioncount{{{B}}}", "under {{instance}}"),
                        target(f"kafka_server_replicamanager_atminisrpartitioncount{{{B}}}", "at {{instance}}", "B")]),
            timeseries("Active controller",
                       [target(f"kafka_controller_kafkacontroller_activecontrollercount{{{B}}}", "{{instance}}")]),
            timeseries("Log size on disk",
                       [target(f"sum by (instance) (kafka_log_log_size{{{B}}})", "{{instance}}")], unit="bytes"),
            row("Throughput and replication"),
            timeseries("Bytes in",
                       [rate_by("instance", "kafka_server_brokertopicmetrics_bytesin_total", B)], unit="Bps", desc="Bytes appended by producers (leaders)."),
            timeseries("Bytes out",
                       [rate_by("instance", "kafka_server_brokertopicmetrics_bytesout_total", B)], unit="Bps"),
            timeseries("Replication bytes in / out",
                       [target(f"sum by (instance) (rate(kafka_server_brokertopicmetrics_replicationbytesin_total{{{B}}}[{RATE}]))",
                               "in {{instance}}"),
                        target(f"sum by (instance) (rate(kafka_server_brokertopicmetrics_replicationbytesout_total{{{B}}}[{RATE}]))",
                               "out {{instance}}", "B")], unit="Bps",
                       desc="Bytes followers fetched (in) and leaders served to followers (out)."),
            timeseries("ISR shrinks / expands",
                       [target(f"sum by (instance) (rate(kafka_server_replicamanager_isrshrinks_total{{{B}}}[{RATE}]))",
                               "shrink {{instance}}"),
                        target(f"sum by (instance) (rate(kafka_server_replicamanager_isrexpands_total{{{B}}}[{RATE}]))",
                               "expand {{instance}}", "B")], unit="ops"),
            timeseries("Fetch requests (consumers and followers)",
                       [target(f'sum by (instance) (rate(kafka_network_requestmetrics_requests_total{{{B},request="Fetch"}}[{RATE}]))',
                               "{{instance}}")], unit="reqps"),
            timeseries("Produce requests",
                       [target(f'sum by (instance) (rate(kafka_network_requestmetrics_requests_total{{{B},request="Produce"}}[{RATE}]))',
                               "{{instance}}")], unit="reqps"),
            row("Transactions"),
            timeseries("Transactional ids by state",
                       [target(f"sum by (state) (rill_transaction_coordinator_transactional_ids{{{B}}})",
                               "{{state}}")],
                       desc="Ids the transaction coordinators hold, by Kafka's state names; Ongoing is open now."),
            timeseries("Open transactions past their timeout",
                       [target(f"sum by (instance) (rill_transaction_coordinator_open_past_timeout{{{B}}})",
                               "{{instance}}")],
                       desc="The coordinator aborts these within transaction.abort.timed.out.transaction.cleanup.interval.ms; "
                            "a count that stays up means their abort cannot be written."),
            timeseries("Last stable offset lag (top 10 partitions)",
                       [target(f"topk(10, rill_log_last_stable_offset_lag{{{B}}})", "{{topic}}-{{partition}}")],
                       desc="High watermark minus last stable offset: records read_committed consumers cannot read yet "
                            "because a transaction before them is open. A partition that stays up may hold a hanging "
                            "transaction (rill transactions find-hanging)."),
        ],
        [INSTANCE_VAR],
    )


def reassignment():
    return dashboard(
        "rill-reassignment",
        "Rill / Reassignment and replication",
        "Watching a partition reassignment or a broker catching up: replicas out of sync, "
        "replication traffic, ISR changes, replica and leader balance. Rill brokers do not "
        "export reassignment progress gauges (Kafka's ReassigningPartitions) yet; the "
        "console's reassignment page shows per-partition progress.",
        [
            row("Catching up"),
            stat("Under-replicated partitions",
                 "sum(kafka_server_replicamanager_underreplicatedpartitions)", th=GREEN_IF_ZERO),
            stat("Replicas out of sync (console)",
                 "sum(kafka_topic_partition_replicas) - sum(kafka_topic_partition_in_sync_replica)",
                 th=GREEN_IF_ZERO, desc="Replicas minus in-sync replicas over all partitions: what is left to copy."),
            stat("Under min ISR partitions",
                 "sum(kafka_server_replicamanager_underminisrpartitioncount)", th=GREEN_IF_ZERO),
            stat("Offline partitions", OFFLINE, th=GREEN_IF_ZERO, desc=OFFLINE_DESC),
            stat("Preferred leaders (console)",
                 "sum(kafka_topic_partition_leader_is_preferred) / count(kafka_topic_partition_leader_is_preferred)",
                 unit="percentunit", th=thresholds((None, "orange"), (0.95, "green"))),
            stat("Leader skew",
                 "max(kafka_server_replicamanager_leadercount) - min(kafka_server_replicamanager_leadercount)",
                 th=thresholds((None, "green"), (2, "orange")),
                 desc="Most minus fewest leaders on one broker."),
            timeseries("Under-replicated partitions by topic (console)",
                       [target("sum by (topic) (kafka_topic_partition_under_replicated_partition)", "{{topic}}")]),
            timeseries("Under-replicated partitions by broker",
                       [target("kafka_server_replicamanager_underreplicatedpartitions", "{{instance}}")]),
            row("Replication traffic"),
            timeseries("Replication bytes in by broker",
                       [rate_by("instance", "kafka_server_brokertopicmetrics_replicationbytesin_total")], unit="Bps", desc="What followers copy from leaders."),
            timeseries("ISR expands by broker",
                       [rate_by("instance", "kafka_server_replicamanager_isrexpands_total")], unit="ops", desc="A reassigned replica joins the ISR once caught up."),
            row("Balance"),
            timeseries("Replicas by broker",
                       [target("kafka_server_replicamanager_partitioncount", "{{instance}}")]),
            timeseries("Leaders by broker",
                       [target("kafka_server_replicamanager_leadercount", "{{instance}}")]),
            timeseries("Disk used by broker",
                       [target("sum by (instance) (kafka_log_log_size)", "{{instance}}")], unit="bytes"),
            timeseries("Partitions not on preferred leader (console)",
                       [target("sum by (topic) (kafka_topic_partition_leader_is_preferred < bool 1)", "{{topic}}")]),
        ],
        [],
    )


DASHBOARDS = {
    "rill-overview.json": overview,
    "rill-topics.json": topics,
    "rill-consumer-lag.json": consumer_lag,
    "rill-brokers.json": brokers,
    "rill-reassignment.json": reassignment,
}


def render(build) -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv) -> int:
    check = "--check" in argv
    stale = []
    for name, build in DASHBOARDS.items():
        path = HERE / name
        text = render(build)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run python3 dashboards/generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
