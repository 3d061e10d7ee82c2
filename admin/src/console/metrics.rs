//! `/metrics`: the snapshot in Prometheus text, rendered once per collector cycle so a
//! scrape is a string copy. Names and labels are kafka_exporter's verbatim (Grafana 7589
//! and Strimzi's exporter dashboard query them) plus kafka-lag-exporter's family for time
//! lag, and a few `rill_console_*` series about the console itself.

use prometheus::{Encoder, GaugeVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::snapshot::{Health, Snapshot};

fn int_gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Option<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).ok()?;
    r.register(Box::new(g.clone())).ok()?;
    Some(g)
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Option<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels).ok()?;
    r.register(Box::new(g.clone())).ok()?;
    Some(g)
}

/// The Prometheus text for `snap`. Empty until the first successful cycle.
pub fn render(snap: &Snapshot) -> String {
    if snap.taken_at_ms == 0 {
        return String::new();
    }
    match build(snap) {
        Some(r) => {
            let mut buf = Vec::new();
            if let Err(e) = TextEncoder::new().encode(&r.gather(), &mut buf) {
                tracing::warn!(error = %e, "cannot encode metrics");
            }
            String::from_utf8(buf).unwrap_or_default()
        }
        None => {
            tracing::warn!("cannot build the metrics registry");
            String::new()
        }
    }
}

/// Series about the console's own view, appended at scrape time (they change without a
/// new snapshot).
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

fn build(snap: &Snapshot) -> Option<Registry> {
    let r = Registry::new();
    let cluster = snap.cluster_id.clone().unwrap_or_else(|| "default".into());
    let c = cluster.as_str();

    let brokers = int_gauge(
        &r,
        "kafka_brokers",
        "Number of Brokers in the Kafka Cluster.",
        &[],
    )?;
    brokers
        .with_label_values::<&str>(&[])
        .set(snap.brokers.len() as i64);
    let info = int_gauge(
        &r,
        "kafka_broker_info",
        "Information about the Kafka Broker.",
        &["id", "address"],
    )?;
    for b in &snap.brokers {
        info.with_label_values(&[b.id.to_string().as_str(), b.address.as_str()])
            .set(1);
    }

    let tp = &["topic", "partition"];
    let partitions = int_gauge(
        &r,
        "kafka_topic_partitions",
        "Number of partitions for this Topic",
        &["topic"],
    )?;
    let current = int_gauge(
        &r,
        "kafka_topic_partition_current_offset",
        "Current Offset of a Broker at Topic/Partition",
        tp,
    )?;
    let oldest = int_gauge(
        &r,
        "kafka_topic_partition_oldest_offset",
        "Oldest Offset of a Broker at Topic/Partition",
        tp,
    )?;
    let leader = int_gauge(
        &r,
        "kafka_topic_partition_leader",
        "Leader Broker ID of this Topic/Partition",
        tp,
    )?;
    let replicas = int_gauge(
        &r,
        "kafka_topic_partition_replicas",
        "Number of Replicas for this Topic/Partition",
        tp,
    )?;
    let isr = int_gauge(
        &r,
        "kafka_topic_partition_in_sync_replica",
        "Number of In-Sync Replicas for this Topic/Partition",
        tp,
    )?;
    let preferred = int_gauge(
        &r,
        "kafka_topic_partition_leader_is_preferred",
        "1 if Topic/Partition is using the Preferred Broker",
        tp,
    )?;
    let under = int_gauge(
        &r,
        "kafka_topic_partition_under_replicated_partition",
        "1 if Topic/Partition is under Replicated",
        tp,
    )?;
    let lx_tp = &["cluster_name", "topic", "partition"];
    let latest = int_gauge(
        &r,
        "kafka_partition_latest_offset",
        "Latest offset of a partition",
        lx_tp,
    )?;
    let earliest = int_gauge(
        &r,
        "kafka_partition_earliest_offset",
        "Earliest offset of a partition",
        lx_tp,
    )?;
    for t in &snap.topics {
        partitions
            .with_label_values(&[t.name.as_str()])
            .set(t.partitions.len() as i64);
        for p in &t.partitions {
            let pn = p.partition.to_string();
            let l = [t.name.as_str(), pn.as_str()];
            current.with_label_values(&l).set(p.latest);
            oldest.with_label_values(&l).set(p.earliest);
            leader.with_label_values(&l).set(i64::from(p.leader));
            replicas.with_label_values(&l).set(p.replicas.len() as i64);
            isr.with_label_values(&l).set(p.isr.len() as i64);
            preferred
                .with_label_values(&l)
                .set(i64::from(p.leader_is_preferred()));
            under
                .with_label_values(&l)
                .set(i64::from(p.under_replicated()));
            let lx = [c, t.name.as_str(), pn.as_str()];
            latest.with_label_values(&lx).set(p.latest);
            earliest.with_label_values(&lx).set(p.earliest);
        }
    }

    let gtp = &["consumergroup", "topic", "partition"];
    let gt = &["consumergroup", "topic"];
    let cg_offset = int_gauge(
        &r,
        "kafka_consumergroup_current_offset",
        "Current Offset of a ConsumerGroup at Topic/Partition",
        gtp,
    )?;
    let cg_offset_sum = int_gauge(
        &r,
        "kafka_consumergroup_current_offset_sum",
        "Current Offset of a ConsumerGroup at Topic for all partitions",
        gt,
    )?;
    let cg_lag = int_gauge(
        &r,
        "kafka_consumergroup_lag",
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        gtp,
    )?;
    let cg_lag_sum = int_gauge(
        &r,
        "kafka_consumergroup_lag_sum",
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        gt,
    )?;
    let cg_members = int_gauge(
        &r,
        "kafka_consumergroup_members",
        "Amount of members in a consumer group",
        &["consumergroup"],
    )?;
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
    )?;
    let lx_lag = int_gauge(
        &r,
        "kafka_consumergroup_group_lag",
        "Group offset lag of a partition",
        lx_part,
    )?;
    let lx_lag_s = gauge(
        &r,
        "kafka_consumergroup_group_lag_seconds",
        "Group time lag of a partition",
        lx_part,
    )?;
    let lx_group = &["cluster_name", "group", "is_simple_consumer"];
    let lx_max = int_gauge(
        &r,
        "kafka_consumergroup_group_max_lag",
        "Max group offset lag",
        lx_group,
    )?;
    let lx_max_s = gauge(
        &r,
        "kafka_consumergroup_group_max_lag_seconds",
        "Max group time lag",
        lx_group,
    )?;
    let lx_sum = int_gauge(
        &r,
        "kafka_consumergroup_group_sum_lag",
        "Sum of group offset lag",
        &["cluster_name", "group"],
    )?;
    let lx_topic_sum = int_gauge(
        &r,
        "kafka_consumergroup_group_topic_sum_lag",
        "Sum of group offset lag across topic partitions",
        &["cluster_name", "group", "topic"],
    )?;
    let status = int_gauge(
        &r,
        "rill_console_consumergroup_status",
        "Group status: 1 ok, 2 lagging, 3 stalled, 4 stopped",
        &["consumergroup"],
    )?;
    for g in &snap.groups {
        let gid = g.group_id.as_str();
        cg_members
            .with_label_values(&[gid])
            .set(g.members.len() as i64);
        status.with_label_values(&[gid]).set(g.status.code());
        let simple = if g.protocol_type.is_empty() {
            "true"
        } else {
            "false"
        };
        lx_max.with_label_values(&[c, gid, simple]).set(g.max_lag());
        if let Some(s) = g.max_lag_seconds() {
            lx_max_s.with_label_values(&[c, gid, simple]).set(s);
        }
        lx_sum.with_label_values(&[c, gid]).set(g.total_lag());
        let mut sums: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        for p in &g.partitions {
            let pn = p.partition.to_string();
            let l = [gid, p.topic.as_str(), pn.as_str()];
            cg_offset.with_label_values(&l).set(p.committed);
            cg_lag.with_label_values(&l).set(p.lag);
            let e = sums.entry(p.topic.as_str()).or_default();
            // kafka_exporter leaves partitions without a commit out of both sums.
            if p.committed >= 0 {
                e.0 += p.committed;
            }
            if p.lag >= 0 {
                e.1 += p.lag;
            }
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
            lx_offset.with_label_values(&lx).set(p.committed);
            lx_lag.with_label_values(&lx).set(p.lag);
            if let Some(s) = p.lag_seconds {
                lx_lag_s.with_label_values(&lx).set(s);
            }
        }
        for (topic, (offset_sum, lag_sum)) in sums {
            cg_offset_sum
                .with_label_values(&[gid, topic])
                .set(offset_sum);
            cg_lag_sum.with_label_values(&[gid, topic]).set(lag_sum);
            lx_topic_sum
                .with_label_values(&[c, gid, topic])
                .set(lag_sum);
        }
    }
    Some(r)
}
