"""Checks of dashboards/, docker-compose.yml and Dockerfile that need no running cluster:
promtool on the rules and the scrape config, the dashboards being what generate.py writes,
Grafana provisioning matching docker-compose.yml, and compose's brokers agreeing with each
other and with dashboards/prometheus.yml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

import queries as q
from promstack import PROMTOOL, suite_config
from queries import DASHBOARDS, REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


# -- Prometheus --------------------------------------------------------------------------

def test_promtool_check_rules():
    out = run([PROMTOOL, "check", "rules", str(DASHBOARDS / "alerts.yml")]).stdout
    assert f"SUCCESS: {len(q.alert_rules())} rules found" in out, out


def test_promtool_check_shipped_config():
    run([PROMTOOL, "check", "config", str(DASHBOARDS / "prometheus.yml")])


def test_promtool_check_test_config(tmp_path):
    """The config the suite runs (shipped config, test targets) is valid too."""
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(suite_config(["127.0.0.1:1", "127.0.0.1:2"], "127.0.0.1:3")))
    run([PROMTOOL, "check", "config", str(path)])


def test_alert_rules_cover_the_issue():
    rules = {r["alert"]: r for r in q.alert_rules()}
    wanted = {
        "RillOfflinePartitions": "kafka_controller_kafkacontroller_offlinepartitionscount",
        "RillUnderReplicatedPartitions": "kafka_server_replicamanager_underreplicatedpartitions",
        "RillUnderMinIsrPartitions": "kafka_server_replicamanager_underminisrpartitioncount",
        "RillNoActiveController": "kafka_controller_kafkacontroller_activecontrollercount",
        "RillConsumerGroupLagSeconds": "kafka_consumergroup_group_max_lag_seconds",
    }
    for name, metric in wanted.items():
        assert name in rules, f"missing alert {name}"
        assert metric in q.metric_names(rules[name]["expr"]), (name, rules[name]["expr"])
    for name, rule in rules.items():
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), name
        assert rule.get("annotations", {}).get("summary"), name
        assert q.strip_threshold(rule["expr"]) != rule["expr"].strip(), f"{name}: no threshold to strip"


def test_strip_threshold_and_metric_names():
    assert q.strip_threshold("sum(x) > 0") == "sum(x)"
    assert q.strip_threshold('up{job="a"} == 0') == 'up{job="a"}'
    assert q.strip_threshold("max by (g) (y) >= bool 1.5e2") == "max by (g) (y)"
    assert q.strip_threshold("rate(x[5m])") == "rate(x[5m])"
    assert q.metric_names('histogram_quantile(0.99, sum by (le, request) (rate(a_bucket{instance=~".*"}[1m])))') == {"a_bucket"}
    assert q.metric_names("sum(a < bool 1) / count(b) offset 5m") == {"a", "b"}
    assert q.substitute('x{t=~"$topic",i=~"${instance}"}[$__rate_interval]') == 'x{t=~".*",i=~".*"}[1m]'
    assert q.legend_labels("{{group}} {{ topic }}/{{partition}}") == {"group", "topic", "partition"}
    assert q.legend_labels("__auto") == set()


# -- Grafana -----------------------------------------------------------------------------

def test_dashboards_are_generated():
    run([sys.executable, str(DASHBOARDS / "generate.py"), "--check"])


DASHBOARD_FILES = q.dashboard_files()


def test_five_dashboards():
    titles = {json.loads(p.read_text())["uid"] for p in DASHBOARD_FILES}
    assert titles == {"rill-overview", "rill-topics", "rill-consumer-lag", "rill-brokers", "rill-reassignment"}


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=[p.name for p in DASHBOARD_FILES])
def test_dashboard_shape(path):
    dash = json.loads(path.read_text())
    assert dash["schemaVersion"] == 39
    assert dash["id"] is None, "provisioned dashboards carry no database id"
    ds_var = [v for v in dash["templating"]["list"] if v["name"] == "DS_PROMETHEUS"]
    assert ds_var and ds_var[0]["type"] == "datasource" and ds_var[0]["query"] == "prometheus"
    assert ds_var[0]["current"]["value"] == provisioned_datasource()["uid"]
    ids = set()
    for panel in q._panels(dash["panels"]):
        assert panel["id"] not in ids, f"duplicate panel id {panel['id']}"
        ids.add(panel["id"])
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, (panel["title"], g)
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']} has no query"
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
    declared = {v["name"] for v in dash["templating"]["list"]}
    for query in q.dashboard_queries():
        if query.source != path.name:
            continue
        for var in re.findall(r"\$\{?(\w+)", query.expr):
            assert var.startswith("__") or var in declared, f"{query.id}: ${var} is not a variable of the dashboard"


def provisioned_datasource() -> dict:
    doc = yaml.safe_load((DASHBOARDS / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (ds,) = doc["datasources"]
    return ds


# -- docker-compose.yml ------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def overrides(command: str) -> dict:
    return dict(kv.split("=", 1) for kv in re.findall(r"--override\s+(\S+)", command))


def test_docker_compose_config_validates():
    """`docker-compose config -q` (Debian's docker-compose v1, or the `docker compose`
    plugin); neither needs a container engine for this."""
    if shutil.which("docker-compose"):
        run(["docker-compose", "-f", str(COMPOSE), "config", "-q"], cwd=REPO_ROOT)
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], cwd=REPO_ROOT)
    else:
        pytest.fail("neither docker-compose nor `docker compose` is installed (scripts/test.sh installs docker-compose)")


def test_compose_services():
    services = compose()["services"]
    assert {"rill-1", "rill-2", "rill-3", "console", "prometheus", "grafana"} <= set(services)


def test_compose_brokers_form_one_cluster():
    services = compose()["services"]
    brokers = {name: overrides(services[name]["command"]) for name in ("rill-1", "rill-2", "rill-3")}
    voters = {o["controller.quorum.voters"] for o in brokers.values()}
    cluster_ids = {o["cluster.id"] for o in brokers.values()}
    assert len(voters) == 1 and len(cluster_ids) == 1, (voters, cluster_ids)
    voter_map = dict(v.split("@") for v in voters.pop().split(","))
    for name, o in brokers.items():
        node = o["node.id"]
        listeners = dict(item.split("://") for item in o["listeners"].split(","))
        ctl_port = listeners["CONTROLLER"].rsplit(":", 1)[1]
        assert voter_map[node] == f"{name}:{ctl_port}", f"{name}: voter entry {voter_map[node]}"
        assert o["advertised.listeners"] == f"PLAINTEXT://{name}:{listeners['PLAINTEXT'].rsplit(':', 1)[1]}"
        assert o["http.listener"].startswith("0.0.0.0:")
        # A broker refuses an HTTP API beyond loopback without credentials unless the opt-out
        # is explicit (the compose network is private).
        assert o.get("http.auth.allow.unauthenticated") == "true" or "http.auth.token" in o, name
    assert sorted(o["node.id"] for o in brokers.values()) == ["1", "2", "3"]


def test_compose_console_points_at_the_brokers():
    services = compose()["services"]
    cmd = services["console"]["command"]
    bootstrap = re.search(r"--bootstrap\s+(\S+)", cmd).group(1).split(",")
    for name in ("rill-1", "rill-2", "rill-3"):
        port = overrides(services[name]["command"])["advertised.listeners"].rsplit(":", 1)[1]
        assert f"{name}:{port}" in bootstrap
    assert re.search(r"--listen\s+0\.0\.0\.0:\d+", cmd), cmd


def test_scrape_targets_match_compose():
    services = compose()["services"]
    prom = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    jobs = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]] for j in prom["scrape_configs"]}
    expected_brokers = [f"{n}:{overrides(services[n]['command'])['http.listener'].rsplit(':', 1)[1]}"
                        for n in ("rill-1", "rill-2", "rill-3")]
    assert sorted(jobs["rill-brokers"]) == sorted(expected_brokers)
    listen_port = re.search(r"--listen\s+\S+:(\d+)", services["console"]["command"]).group(1)
    assert jobs["rill-console"] == [f"console:{listen_port}"]


def test_compose_mounts_exist_and_match_provisioning():
    services = compose()["services"]
    mounts = {}
    for name in ("prometheus", "grafana"):
        for v in services[name]["volumes"]:
            src, dst = v.split(":")[:2]
            if src.startswith("./"):
                assert (REPO_ROOT / src).exists(), f"{name} mounts missing {src}"
                mounts[dst] = src
    assert mounts["/etc/prometheus/prometheus.yml"] == "./dashboards/prometheus.yml"
    # rule_files are relative to the config: alerts.yml must sit beside it in the container too.
    prom = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    for rf in prom["rule_files"]:
        assert f"/etc/prometheus/{rf}" in mounts, f"rule file {rf} not mounted beside the config"
    provider = yaml.safe_load((DASHBOARDS / "grafana/provisioning/dashboards/rill.yml").read_text())["providers"][0]
    assert mounts[provider["options"]["path"]] == "./dashboards"
    ds = provisioned_datasource()
    assert ds["url"] == "http://prometheus:9090"
    assert "--web.listen-address=0.0.0.0:9090" in services["prometheus"]["command"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (DASHBOARDS / home.rsplit("/", 1)[1]).exists()


def test_compose_ports_bind_loopback():
    for name, svc in compose()["services"].items():
        for p in svc.get("ports", []):
            assert str(p).startswith("127.0.0.1:"), f"{name} publishes {p} on every interface"


def test_compose_console_flags_exist(console_help_text):
    """Every flag of compose's `rill console` command is one the built console has."""
    if console_help_text is None:
        pytest.skip("target/debug/rill has no `console` command")
    cmd = compose()["services"]["console"]["command"]
    for flag in re.findall(r"(--[a-z][a-z-]*)", cmd):
        assert flag in console_help_text, f"rill console has no {flag}"


def test_dockerfile_builds_what_compose_runs():
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"cargo build --release --locked -p rill-broker -p rill-admin --bins", text)
    assert "/usr/local/bin/" in text
    services = compose()["services"]
    for name in ("rill-1", "rill-2", "rill-3", "console"):
        assert services[name]["image"] == "rill:local" and services[name]["build"]["dockerfile"] == "Dockerfile"
    assert services["console"]["command"].split()[0] == "rill"
    assert all(services[n]["command"].split()[0] == "rill-broker" for n in ("rill-1", "rill-2", "rill-3"))
