//! `/metrics`: the snapshot in Prometheus text, rendered once per collector cycle so a
//! scrape is a string copy. Names and labels are kafka_exporter's verbatim (Grafana 7589
//! and Strimzi's exporter dashboard query them) plus kafka-lag-exporter's family for time
//! lag, and a few `rill_console_*` series about the console itself.
//!
//! What a partition without a committed offset emits: kafka_exporter's rule,
//! `kafka_consumergroup_current_offset` and `kafka_consumergroup_lag` are -1 and the
//! partition is left out of the `_sum` series and of kafka-lag-exporter's
//! `kafka_consumergroup_group_*` lag series (dashboards filter `>= 0`). Rill's own series
//! count it: `rill_consumergroup_backlog` is the console's lag (from the log start where
//! nothing is committed), `rill_consumergroup_backlog_sum` the group total the console
//! shows, `rill_consumergroup_uncommitted_partitions` how many partitions have no commit.
//!
//! What was not measured is not emitted: a partition whose offsets could not be read this
//! cycle has no lag series at all (not a 0, not a stale value), and
//! `rill_consumergroup_unknown_partitions` counts them; `rill_console_collection_failures_total`
//! counts failed collection requests by kind.
//!
//! `rill_consumergroup_catchup_seconds`: seconds until the group's lag reaches 0 at the
//! consume and produce rates of the status window; 0 when caught up, `+Inf` when it is
//! falling behind or not consuming, absent while there is too little history.
//!
//! The scrape budget ([`Scope`]): a cluster of 100,000 partitions would be ~60 MB of text
//! per scrape, more than a Prometheus scrape should carry. kafka_exporter's filters
//! (`topic.filter`, `topic.exclude`, `group.filter`, `group.exclude`, unanchored regexes)
//! choose which topics and groups are covered, and a cap bounds the per-partition label
//! sets of each family. What the cap leaves out is counted, never silent:
//! `rill_console_metrics_omitted_partitions{family}` says how many partitions have no
//! per-partition series, and whole topics (or groups) are left out, in name order, so a
//! topic's partitions are either all there or all absent. Topic- and group-level series
//! (`kafka_topic_partitions`, group totals, status) are not capped: they grow with topics
//! and groups, not partitions. Group totals stay whole-group figures (the console's
//! numbers) whatever the topic filter drops.

use std::fmt::Write as _;

use regex::Regex;

use super::snapshot::{Health, LagBasis, PartitionLag, Snapshot};

/// The families of one rendering, written as Prometheus text by [`Families::text`].
///
/// Why not the `prometheus` crate's registry (the brokers use it, for live instruments):
/// this text is a dump of a snapshot, built once per cycle and thrown away, and the
/// registry's per-series children (label vectors, hash maps, then the protobuf families
/// `gather` copies them into) cost about 15 times the text: rendering 100,000 partitions
/// and 1,000 groups took 1.3 s and peaked at 360 MB for 23 MB of text. Writing each
/// series' line straight into its family's buffer keeps the exposition format (HELP, TYPE,
/// labels sorted by name and escaped, families sorted by name, empty families left out)
/// at the cost of the text alone.
#[derive(Default)]
struct Families {
    all: std::cell::RefCell<Vec<Family>>,
}

/// One metric family: its header and the lines of its series.
#[derive(Clone)]
struct Family(std::rc::Rc<std::cell::RefCell<FamilyText>>);

struct FamilyText {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// Label names sorted, and for each the index of its value in `set`'s argument.
    labels: Vec<(&'static str, usize)>,
    lines: String,
}

/// A sample value as the text format spells it.
trait SampleValue {
    fn write(&self, out: &mut String);
}

impl SampleValue for i64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl SampleValue for f64 {
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl Families {
    fn family(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &[&'static str],
    ) -> Family {
        let mut sorted: Vec<(&'static str, usize)> =
            labels.iter().enumerate().map(|(i, l)| (*l, i)).collect();
        sorted.sort();
        let f = Family(std::rc::Rc::new(std::cell::RefCell::new(FamilyText {
            name,
            help,
            kind,
            labels: sorted,
            lines: String::new(),
        })));
        self.all.borrow_mut().push(f.clone());
        f
    }

    /// The exposition text of every family with a series, sorted by name.
    fn text(&self) -> String {
        let all = self.all.borrow();
        let mut fams: Vec<_> = all.iter().map(|f| f.0.borrow()).collect();
        fams.sort_by_key(|f| f.name);
        let mut out = String::with_capacity(fams.iter().map(|f| f.lines.len() + 160).sum());
        for f in fams.iter().filter(|f| !f.lines.is_empty()) {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            out.push_str(&f.lines);
        }
        out
    }
}

impl Family {
    /// Writes one series: `values` in the order the labels were declared.
    fn set(&self, values: &[&str], v: impl SampleValue) {
        let mut f = self.0.borrow_mut();
        debug_assert_eq!(values.len(), f.labels.len(), "{}", f.name);
        let FamilyText {
            name,
            labels,
            lines,
            ..
        } = &mut *f;
        lines.push_str(name);
        if !labels.is_empty() {
            lines.push('{');
            for (k, (label, i)) in labels.iter().enumerate() {
                if k > 0 {
                    lines.push(',');
                }
                lines.push_str(label);
                lines.push_str("=\"");
                escape_label(values.get(*i).copied().unwrap_or(""), lines);
                lines.push('"');
            }
            lines.push('}');
        }
        lines.push(' ');
        v.write(lines);
        lines.push('\n');
    }
}

fn escape_label(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

fn int_gauge(
    r: &Families,
    name: &'static str,
    help: &'static str,
    labels: &[&'static str],
) -> Family {
    r.family(name, help, "gauge", labels)
}

fn gauge(r: &Families, name: &'static str, help: &'static str, labels: &[&'static str]) -> Family {
    r.family(name, help, "gauge", labels)
}

/// Default of [`Scope::max_partitions`]: ~13 MB of topic series, a scrape well under a
/// second.
pub const DEFAULT_MAX_PARTITIONS: usize = 20_000;

/// Names a filter covers: those the include regex matches and the exclude regex does not
/// (kafka_exporter's `*.filter` / `*.exclude`, matched anywhere in the name).
#[derive(Debug, Clone)]
pub struct NameFilter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl NameFilter {
    /// Every name.
    pub fn all() -> NameFilter {
        NameFilter {
            include: None,
            exclude: None,
        }
    }

    /// A filter from the two regexes; `None` includes everything / excludes nothing.
    pub fn new(include: Option<Regex>, exclude: Option<Regex>) -> NameFilter {
        NameFilter { include, exclude }
    }

    /// Whether `name` is covered.
    pub fn covers(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// What `/metrics` covers (module docs: the scrape budget).
#[derive(Debug, Clone)]
pub struct Scope {
    /// Topics with series (topic series, and group series of those topics).
    pub topics: NameFilter,
    /// Groups with series.
    pub groups: NameFilter,
    /// Most partitions with per-partition series, per family (topic partitions; group
    /// partitions).
    pub max_partitions: usize,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            topics: NameFilter::all(),
            groups: NameFilter::all(),
            max_partitions: DEFAULT_MAX_PARTITIONS,
        }
    }
}

/// Hands out a family's per-partition budget whole topics (or groups) at a time.
struct Budget {
    left: usize,
    omitted: u64,
}

impl Budget {
    fn new(max: usize) -> Budget {
        Budget {
            left: max,
            omitted: 0,
        }
    }

    /// Whether `n` more partitions fit; those that do not are counted as omitted.
    fn take(&mut self, n: usize) -> bool {
        if n <= self.left {
            self.left -= n;
            true
        } else {
            self.omitted += n as u64;
            false
        }
    }
}

/// The Prometheus text for `snap` within `scope`. Empty until the first successful cycle.
pub fn render(snap: &Snapshot, scope: &Scope) -> String {
    if snap.taken_at_ms == 0 {
        return String::new();
    }
    build(snap, scope).text()
}

/// Series about the console's own view, appended to the snapshot's whenever the health
/// changes (after every cycle, successful or not).
pub fn health_text(health: &Health, snap: &Snapshot) -> String {
    format!(
        "# HELP rill_console_cluster_up Whether the last collection reached the cluster (1) or not (0).\n\
         # TYPE rill_console_cluster_up gauge\n\
         rill_console_cluster_up {}\n\
         # HELP rill_console_last_collect_timestamp_seconds When the snapshot served was taken.\n\
         # TYPE rill_console_last_collect_timestamp_seconds gauge\n\
         rill_console_last_collect_timestamp_seconds {}\n\
         # HELP rill_console_collect_duration_seconds How long the last successful collection took.\n\
         # TYPE rill_console_collect_duration_seconds gauge\n\
         rill_console_collect_duration_seconds {}\n",
        u8::from(health.reachable),
        snap.taken_at_ms as f64 / 1000.0,
        snap.cycle_ms as f64 / 1000.0,
    )
}

fn build(snap: &Snapshot, scope: &Scope) -> Families {
    let r = Families::default();
    let cluster = snap.cluster_id.clone().unwrap_or_else(|| "default".into());
    let c = cluster.as_str();

    let brokers = int_gauge(
        &r,
        "kafka_brokers",
        "Number of Brokers in the Kafka Cluster.",
        &[],
    );
    brokers.set(&[], snap.brokers.len() as i64);
    let info = int_gauge(
        &r,
        "kafka_broker_info",
        "Information about the Kafka Broker.",
        &["id", "address"],
    );
    for b in &snap.brokers {
        info.set(&[b.id.to_string().as_str(), b.address.as_str()], 1_i64);
    }

    let tp = &["topic", "partition"];
    let partitions = int_gauge(
        &r,
        "kafka_topic_partitions",
        "Number of partitions for this Topic",
        &["topic"],
    );
    let current = int_gauge(
        &r,
        "kafka_topic_partition_current_offset",
        "Current Offset of a Broker at Topic/Partition",
        tp,
    );
    let oldest = int_gauge(
        &r,
        "kafka_topic_partition_oldest_offset",
        "Oldest Offset of a Broker at Topic/Partition",
        tp,
    );
    let leader = int_gauge(
        &r,
        "kafka_topic_partition_leader",
        "Leader Broker ID of this Topic/Partition",
        tp,
    );
    let replicas = int_gauge(
        &r,
        "kafka_topic_partition_replicas",
        "Number of Replicas for this Topic/Partition",
        tp,
    );
    let isr = int_gauge(
        &r,
        "kafka_topic_partition_in_sync_replica",
        "Number of In-Sync Replicas for this Topic/Partition",
        tp,
    );
    let preferred = int_gauge(
        &r,
        "kafka_topic_partition_leader_is_preferred",
        "1 if Topic/Partition is using the Preferred Broker",
        tp,
    );
    let under = int_gauge(
        &r,
        "kafka_topic_partition_under_replicated_partition",
        "1 if Topic/Partition is under Replicated",
        tp,
    );
    let lx_tp = &["cluster_name", "topic", "partition"];
    let latest = int_gauge(
        &r,
        "kafka_partition_latest_offset",
        "Latest offset of a partition",
        lx_tp,
    );
    let earliest = int_gauge(
        &r,
        "kafka_partition_earliest_offset",
        "Earliest offset of a partition",
        lx_tp,
    );
    let omitted = int_gauge(
        &r,
        "rill_console_metrics_omitted_partitions",
        "Partitions left without per-partition series by the cap on /metrics (--metrics-max-partitions), by family: topic or group",
        &["family"],
    );
    // Name order, so the same topics keep their series from one cycle to the next.
    let mut topics: Vec<_> = snap
        .topics
        .iter()
        .filter(|t| scope.topics.covers(&t.name))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    let mut budget = Budget::new(scope.max_partitions);
    for t in topics {
        partitions.set(&[t.name.as_str()], t.partitions.len() as i64);
        if !budget.take(t.partitions.len()) {
            continue;
        }
        for p in &t.partitions {
            let pn = p.partition.to_string();
            let l = [t.name.as_str(), pn.as_str()];
            // Offsets this cycle could not read are left out, not written as -1 or 0.
            if p.latest >= 0 {
                current.set(&l, p.latest);
            }
            if p.earliest >= 0 {
                oldest.set(&l, p.earliest);
            }
            leader.set(&l, i64::from(p.leader));
            replicas.set(&l, p.replicas.len() as i64);
            isr.set(&l, p.isr.len() as i64);
            preferred.set(&l, i64::from(p.leader_is_preferred()));
            under.set(&l, i64::from(p.under_replicated()));
            let lx = [c, t.name.as_str(), pn.as_str()];
            if p.latest >= 0 {
                latest.set(&lx, p.latest);
            }
            if p.earliest >= 0 {
                earliest.set(&lx, p.earliest);
            }
        }
    }

    let gtp = &["consumergroup", "topic", "partition"];
    let gt = &["consumergroup", "topic"];
    let cg_offset = int_gauge(
        &r,
        "kafka_consumergroup_current_offset",
        "Current Offset of a ConsumerGroup at Topic/Partition",
        gtp,
    );
    let cg_offset_sum = int_gauge(
        &r,
        "kafka_consumergroup_current_offset_sum",
        "Current Offset of a ConsumerGroup at Topic for all partitions",
        gt,
    );
    let cg_lag = int_gauge(
        &r,
        "kafka_consumergroup_lag",
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        gtp,
    );
    let cg_lag_sum = int_gauge(
        &r,
        "kafka_consumergroup_lag_sum",
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        gt,
    );
    let cg_members = int_gauge(
        &r,
        "kafka_consumergroup_members",
        "Amount of members in a consumer group",
        &["consumergroup"],
    );
    let lx_part = &[
        "cluster_name",
        "group",
        "topic",
        "partition",
        "member_host",
        "consumer_id",
        "client_id",
    ];
    let lx_offset = int_gauge(
        &r,
        "kafka_consumergroup_group_offset",
        "Last group consumed offset of a partition",
        lx_part,
    );
    let lx_lag = int_gauge(
        &r,
        "kafka_consumergroup_group_lag",
        "Group offset lag of a partition",
        lx_part,
    );
    let lx_lag_s = gauge(
        &r,
        "kafka_consumergroup_group_lag_seconds",
        "Group time lag of a partition",
        lx_part,
    );
    let lx_group = &["cluster_name", "group", "is_simple_consumer"];
    let lx_max = int_gauge(
        &r,
        "kafka_consumergroup_group_max_lag",
        "Max group offset lag",
        lx_group,
    );
    let lx_max_s = gauge(
        &r,
        "kafka_consumergroup_group_max_lag_seconds",
        "Max group time lag",
        lx_group,
    );
    let lx_sum = int_gauge(
        &r,
        "kafka_consumergroup_group_sum_lag",
        "Sum of group offset lag",
        &["cluster_name", "group"],
    );
    let lx_topic_sum = int_gauge(
        &r,
        "kafka_consumergroup_group_topic_sum_lag",
        "Sum of group offset lag across topic partitions",
        &["cluster_name", "group", "topic"],
    );
    let status = int_gauge(
        &r,
        "rill_console_consumergroup_status",
        "Group status: 1 ok, 2 lagging, 3 stalled, 4 stopped, 5 errored (not measured)",
        &["consumergroup"],
    );
    let backlog = int_gauge(
        &r,
        "rill_consumergroup_backlog",
        "Messages the group is behind on a partition: end - committed offset, or end - log start offset where nothing is committed",
        gtp,
    );
    let backlog_sum = int_gauge(
        &r,
        "rill_consumergroup_backlog_sum",
        "Sum of rill_consumergroup_backlog over the group's measured partitions",
        &["consumergroup"],
    );
    let uncommitted = int_gauge(
        &r,
        "rill_consumergroup_uncommitted_partitions",
        "Partitions the group consumes (assigned) without a committed offset",
        &["consumergroup"],
    );
    let unknown = int_gauge(
        &r,
        "rill_consumergroup_unknown_partitions",
        "Partitions of the group whose lag could not be measured in the last collection",
        &["consumergroup"],
    );
    let catchup = gauge(
        &r,
        "rill_consumergroup_catchup_seconds",
        "Seconds until the group's lag reaches 0 at its current consume and produce rates (0 caught up, +Inf falling behind or not consuming)",
        &["consumergroup"],
    );
    let failures = r.family(
        "rill_console_collection_failures_total",
        "Collection requests that failed, by request",
        "counter",
        &["request"],
    );
    for (request, n) in &snap.failures {
        failures.set(&[request.as_str()], *n);
    }
    omitted.set(&["topic"], budget.omitted as i64);
    let mut groups: Vec<_> = snap
        .groups
        .iter()
        .filter(|g| scope.groups.covers(&g.group_id))
        .collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let mut budget = Budget::new(scope.max_partitions);
    for g in groups {
        let gid = g.group_id.as_str();
        cg_members.set(&[gid], g.members.len() as i64);
        status.set(&[gid], g.status.code());
        uncommitted.set(&[gid], g.uncommitted_partitions() as i64);
        unknown.set(&[gid], g.unknown_partitions() as i64);
        // Group totals only when every partition was measured: a partial sum is a false
        // number.
        let complete = g.error.is_none() && g.unknown_partitions() == 0;
        if complete {
            backlog_sum.set(&[gid], g.total_lag());
        }
        if let Some(s) = g.forecast.catchup_seconds() {
            catchup.set(&[gid], s);
        }
        let simple = if g.protocol_type.is_empty() {
            "true"
        } else {
            "false"
        };
        let measured: Vec<_> = g.partitions.iter().filter(|p| !p.is_stale()).collect();
        let covered: Vec<&PartitionLag> = measured
            .iter()
            .copied()
            .filter(|p| scope.topics.covers(&p.topic))
            .collect();
        let per_partition = budget.take(covered.len());
        let exporter_lag = |p: &PartitionLag| {
            if p.basis == LagBasis::Committed {
                p.lag
            } else {
                -1
            }
        };
        if complete {
            let committed_lags = measured.iter().map(|p| exporter_lag(p));
            lx_max.set(
                &[c, gid, simple],
                committed_lags.clone().max().unwrap_or(0).max(0),
            );
            lx_sum.set(&[c, gid], committed_lags.filter(|l| *l >= 0).sum::<i64>());
            let max_s = measured
                .iter()
                .filter(|p| p.basis == LagBasis::Committed)
                .filter_map(|p| p.lag_seconds)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            if let Some(s) = max_s {
                lx_max_s.set(&[c, gid, simple], s);
            }
        }
        let mut sums: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        for p in covered {
            let lag = exporter_lag(p);
            let e = sums.entry(p.topic.as_str()).or_default();
            // kafka_exporter leaves partitions without a commit out of both sums.
            if p.committed >= 0 {
                e.0 += p.committed;
            }
            if lag >= 0 {
                e.1 += lag;
            }
            if !per_partition {
                continue;
            }
            let pn = p.partition.to_string();
            let l = [gid, p.topic.as_str(), pn.as_str()];
            cg_offset.set(&l, p.committed);
            cg_lag.set(&l, lag);
            backlog.set(&l, p.lag);
            let member = p
                .owner
                .as_ref()
                .and_then(|o| g.members.iter().find(|m| &m.member_id == o));
            let (host, consumer, client) = member.map_or(("", "", ""), |m| {
                (m.host.as_str(), m.member_id.as_str(), m.client_id.as_str())
            });
            let lx = [
                c,
                gid,
                p.topic.as_str(),
                pn.as_str(),
                host,
                consumer,
                client,
            ];
            // kafka-lag-exporter reports only partitions with a commit.
            if p.basis == LagBasis::Committed {
                lx_offset.set(&lx, p.committed);
                lx_lag.set(&lx, lag);
                if let Some(s) = p.lag_seconds {
                    lx_lag_s.set(&lx, s);
                }
            }
        }
        for (topic, (offset_sum, lag_sum)) in sums {
            if g.partitions
                .iter()
                .any(|p| p.topic == topic && p.is_stale())
            {
                continue;
            }
            cg_offset_sum.set(&[gid, topic], offset_sum);
            cg_lag_sum.set(&[gid, topic], lag_sum);
            lx_topic_sum.set(&[c, gid, topic], lag_sum);
        }
    }
    omitted.set(&["group"], budget.omitted as i64);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::snapshot::{Forecast, GroupInfo, GroupStatus, PartitionInfo, TopicInfo};

    fn topic(name: &str, partitions: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            internal: name.starts_with("__"),
            partitions: (0..partitions)
                .map(|p| PartitionInfo {
                    partition: p,
                    leader: 1,
                    replicas: vec![1],
                    isr: vec![1],
                    earliest: 0,
                    latest: 10,
                    size: None,
                })
                .collect(),
            min_insync_replicas: None,
            cleanup_policy: None,
        }
    }

    fn group(id: &str, topics: &[(&str, i32)]) -> GroupInfo {
        let partitions = topics
            .iter()
            .flat_map(|(t, n)| {
                (0..*n).map(move |p| PartitionLag {
                    topic: t.to_string(),
                    partition: p,
                    committed: 4,
                    end: 10,
                    log_start: 0,
                    lag: 6,
                    stable_end: 10,
                    stable_lag: 6,
                    basis: LagBasis::Committed,
                    lag_seconds: None,
                    lag_seconds_method: None,
                    status: GroupStatus::Ok,
                    status_reason: String::new(),
                    measured_at_ms: 1,
                    error: None,
                    owner: None,
                })
            })
            .collect();
        GroupInfo {
            group_id: id.into(),
            state: "Empty".into(),
            protocol_type: "consumer".into(),
            group_type: "classic".into(),
            epochs: None,
            protocol: String::new(),
            coordinator: 1,
            members: vec![],
            partitions,
            status: GroupStatus::Ok,
            status_reason: String::new(),
            forecast: Forecast::default(),
            error: None,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            taken_at_ms: 1,
            topics: vec![
                topic("__consumer_offsets", 3),
                topic("a", 2),
                topic("b", 3),
                topic("c", 1),
            ],
            groups: vec![group("g2", &[("c", 1)]), group("g1", &[("a", 2), ("b", 3)])],
            ..Snapshot::default()
        }
    }

    /// The value of the one series whose line starts with `prefix` (name and labels).
    fn value(text: &str, prefix: &str) -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
    }

    #[test]
    fn the_cap_leaves_whole_topics_out_and_counts_them() {
        let scope = Scope {
            max_partitions: 6,
            ..Scope::default()
        };
        let text = render(&snapshot(), &scope);
        let offset = |t: &str, p: i32| {
            value(
                &text,
                &format!("kafka_topic_partition_current_offset{{partition=\"{p}\",topic=\"{t}\"}}"),
            )
        };
        // Name order: __consumer_offsets (3) and a (2) fit, b (3) does not, c (1) does.
        assert_eq!(offset("__consumer_offsets", 2).as_deref(), Some("10"));
        assert_eq!(offset("a", 1).as_deref(), Some("10"));
        assert_eq!(offset("b", 0), None);
        assert_eq!(offset("c", 0).as_deref(), Some("10"));
        // Topic-level series stay for every topic.
        assert_eq!(
            value(&text, "kafka_topic_partitions{topic=\"b\"}").as_deref(),
            Some("3")
        );
        assert_eq!(
            value(
                &text,
                "rill_console_metrics_omitted_partitions{family=\"topic\"}"
            )
            .as_deref(),
            Some("3")
        );
        // Groups in id order: g1 (5 partitions) fits, g2 (1) fits as well.
        assert_eq!(
            value(
                &text,
                "rill_console_metrics_omitted_partitions{family=\"group\"}"
            )
            .as_deref(),
            Some("0")
        );
        let scope = Scope {
            max_partitions: 4,
            ..Scope::default()
        };
        let text = render(&snapshot(), &scope);
        // g1's 5 partitions do not fit: no per-partition series, totals still there.
        assert_eq!(
            value(
                &text,
                "kafka_consumergroup_lag{consumergroup=\"g1\",partition=\"0\",topic=\"a\"}"
            ),
            None
        );
        assert_eq!(
            value(
                &text,
                "kafka_consumergroup_lag_sum{consumergroup=\"g1\",topic=\"b\"}"
            )
            .as_deref(),
            Some("18")
        );
        assert_eq!(
            value(
                &text,
                "kafka_consumergroup_lag{consumergroup=\"g2\",partition=\"0\",topic=\"c\"}"
            )
            .as_deref(),
            Some("6")
        );
        assert_eq!(
            value(
                &text,
                "rill_console_metrics_omitted_partitions{family=\"group\"}"
            )
            .as_deref(),
            Some("5")
        );
    }

    #[test]
    fn filters_choose_topics_and_groups_as_kafka_exporter_does() {
        let re = |s: &str| Some(Regex::new(s).expect("valid"));
        let scope = Scope {
            topics: NameFilter::new(None, re("^__")),
            groups: NameFilter::new(re("1"), None),
            ..Scope::default()
        };
        let text = render(&snapshot(), &scope);
        assert!(!text.contains("topic=\"__consumer_offsets\""), "{text}");
        assert!(
            text.contains("kafka_topic_partitions{topic=\"a\"} 2"),
            "{text}"
        );
        assert!(!text.contains("consumergroup=\"g2\""), "{text}");
        assert!(text.contains("consumergroup=\"g1\""), "{text}");
        // Unanchored, as Go's MatchString: "b" matches every name containing a b.
        let scope = Scope {
            topics: NameFilter::new(re("b"), None),
            ..Scope::default()
        };
        let text = render(&snapshot(), &scope);
        assert!(
            text.contains("kafka_topic_partitions{topic=\"b\"} 3"),
            "{text}"
        );
        assert!(
            !text.contains("kafka_topic_partitions{topic=\"a\"}"),
            "{text}"
        );
        // The group series of a filtered-out topic go too; the group's totals stay whole.
        assert!(!text.contains("kafka_consumergroup_lag_sum{consumergroup=\"g1\",topic=\"a\"}"));
        assert_eq!(
            value(
                &text,
                "rill_consumergroup_backlog_sum{consumergroup=\"g1\"}"
            )
            .as_deref(),
            Some("30")
        );
    }

    #[test]
    fn the_text_is_prometheus_exposition_format() {
        let r = Families::default();
        let b = r.family("b_total", "B\\ with\na newline", "counter", &["z", "a"]);
        let a = gauge(&r, "a_seconds", "A", &["x"]);
        let empty = int_gauge(&r, "c_empty", "never set", &[]);
        b.set(&["q\"uote", "back\\slash\nnl"], 3_u64);
        a.set(&["1"], f64::INFINITY);
        a.set(&["2"], 0.25);
        a.set(&["3"], f64::NAN);
        drop(empty);
        assert_eq!(
            r.text(),
            "# HELP a_seconds A\n# TYPE a_seconds gauge\n\
             a_seconds{x=\"1\"} +Inf\na_seconds{x=\"2\"} 0.25\na_seconds{x=\"3\"} NaN\n\
             # HELP b_total B\\\\ with\\na newline\n# TYPE b_total counter\n\
             b_total{a=\"back\\\\slash\\nnl\",z=\"q\\\"uote\"} 3\n"
        );
    }
}
