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

use regex::Regex;

use super::snapshot::{Health, LagBasis, PartitionLag, Snapshot};

#[cfg(test)]
mod tests;
mod text;

use text::{gauge, Families};

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

    let brokers = gauge(
        &r,
        "kafka_brokers",
        "Number of Brokers in the Kafka Cluster.",
        &[],
    );
    brokers.set(&[], snap.brokers.len() as i64);
    let info = gauge(
        &r,
        "kafka_broker_info",
        "Information about the Kafka Broker.",
        &["id", "address"],
    );
    for b in &snap.brokers {
        info.set(&[b.id.to_string().as_str(), b.address.as_str()], 1_i64);
    }

    let tp = &["topic", "partition"];
    let partitions = gauge(
        &r,
        "kafka_topic_partitions",
        "Number of partitions for this Topic",
        &["topic"],
    );
    let current = gauge(
        &r,
        "kafka_topic_partition_current_offset",
        "Current Offset of a Broker at Topic/Partition",
        tp,
    );
    let oldest = gauge(
        &r,
        "kafka_topic_partition_oldest_offset",
        "Oldest Offset of a Broker at Topic/Partition",
        tp,
    );
    let leader = gauge(
        &r,
        "kafka_topic_partition_leader",
        "Leader Broker ID of this Topic/Partition",
        tp,
    );
    let replicas = gauge(
        &r,
        "kafka_topic_partition_replicas",
        "Number of Replicas for this Topic/Partition",
        tp,
    );
    let isr = gauge(
        &r,
        "kafka_topic_partition_in_sync_replica",
        "Number of In-Sync Replicas for this Topic/Partition",
        tp,
    );
    let preferred = gauge(
        &r,
        "kafka_topic_partition_leader_is_preferred",
        "1 if Topic/Partition is using the Preferred Broker",
        tp,
    );
    let under = gauge(
        &r,
        "kafka_topic_partition_under_replicated_partition",
        "1 if Topic/Partition is under Replicated",
        tp,
    );
    let lx_tp = &["cluster_name", "topic", "partition"];
    let latest = gauge(
        &r,
        "kafka_partition_latest_offset",
        "Latest offset of a partition",
        lx_tp,
    );
    let earliest = gauge(
        &r,
        "kafka_partition_earliest_offset",
        "Earliest offset of a partition",
        lx_tp,
    );
    let omitted = gauge(
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
    let cg_offset = gauge(
        &r,
        "kafka_consumergroup_current_offset",
        "Current Offset of a ConsumerGroup at Topic/Partition",
        gtp,
    );
    let cg_offset_sum = gauge(
        &r,
        "kafka_consumergroup_current_offset_sum",
        "Current Offset of a ConsumerGroup at Topic for all partitions",
        gt,
    );
    let cg_lag = gauge(
        &r,
        "kafka_consumergroup_lag",
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        gtp,
    );
    let cg_lag_sum = gauge(
        &r,
        "kafka_consumergroup_lag_sum",
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        gt,
    );
    let cg_members = gauge(
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
    let lx_offset = gauge(
        &r,
        "kafka_consumergroup_group_offset",
        "Last group consumed offset of a partition",
        lx_part,
    );
    let lx_lag = gauge(
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
    let lx_max = gauge(
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
    let lx_sum = gauge(
        &r,
        "kafka_consumergroup_group_sum_lag",
        "Sum of group offset lag",
        &["cluster_name", "group"],
    );
    let lx_topic_sum = gauge(
        &r,
        "kafka_consumergroup_group_topic_sum_lag",
        "Sum of group offset lag across topic partitions",
        &["cluster_name", "group", "topic"],
    );
    let status = gauge(
        &r,
        "rill_console_consumergroup_status",
        "Group status: 1 ok, 2 lagging, 3 stalled, 4 stopped, 5 errored (not measured)",
        &["consumergroup"],
    );
    let backlog = gauge(
        &r,
        "rill_consumergroup_backlog",
        "Messages the group is behind on a partition: end - committed offset, or end - log start offset where nothing is committed",
        gtp,
    );
    let backlog_sum = gauge(
        &r,
        "rill_consumergroup_backlog_sum",
        "Sum of rill_consumergroup_backlog over the group's measured partitions",
        &["consumergroup"],
    );
    let uncommitted = gauge(
        &r,
        "rill_consumergroup_uncommitted_partitions",
        "Partitions the group consumes (assigned) without a committed offset",
        &["consumergroup"],
    );
    let unknown = gauge(
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
