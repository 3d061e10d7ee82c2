//! The collector: one task that polls the cluster through the Kafka protocol every
//! interval (Metadata, ListOffsets earliest/latest, DescribeConfigs, DescribeLogDirs,
//! ListGroups, DescribeGroups, OffsetFetch), builds a [`Snapshot`], swaps it in for pages
//! and `/metrics`, and appends samples to the store. When the cluster cannot be reached the
//! last snapshot stays and [`Health`] says why, so every page can show a banner.
//!
//! Failures degrade per entry, never to zero: a broker that does not answer is listed as
//! unreachable with its last known figures, a partition whose offsets could not be read,
//! or a group that could not be described, keeps its last good values with their age and
//! status *errored*; nothing unmeasured is stored as a sample or emitted as a series, and
//! each failed request is counted (`rill_console_collection_failures_total`).
//! After each cycle it imports the CLI's new changes from `__rill_audit` into the audit
//! log ([`super::audit_feed`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rill_client::{ClientError, Cluster, OffsetSpec, TopicPartition};
use tokio::sync::{watch, Notify};

use super::audit_feed::AuditFeed;
use super::lag::{self, LagPoint, OffsetTable, Thresholds, Window};
use super::metrics;
use super::snapshot::{
    BrokerInfo, BrokerState, Forecast, GroupInfo, GroupStatus, Health, LagBasis, MemberInfo,
    PartitionInfo, PartitionLag, Snapshot, TimeLagMethod, TopicInfo,
};
use super::store::{Retention, Store, DEFAULT_THRESHOLDS};
use crate::clock::now_ms;
use crate::ops::lag::partition_lag;

/// Cycles between two expiry passes over the store.
const EXPIRE_EVERY: u64 = 30;
/// Record reads for time lag (offsets older than the end-offset history) per cycle; the
/// rest wait for the next cycle (their time lag is unknown meanwhile).
const MAX_TIMESTAMP_READS_PER_CYCLE: usize = 64;
/// A broker that has left the metadata is still listed (unreachable) this long after it
/// last answered.
const REMEMBER_BROKER_MS: i64 = 3_600_000;
/// At most this many such brokers are remembered.
const MAX_REMEMBERED_BROKERS: usize = 256;

/// What pages, `/metrics` and the collector share.
#[derive(Debug)]
pub struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    health: RwLock<Health>,
    metrics: RwLock<Arc<String>>,
    /// Bumped after every cycle, successful or not.
    cycles: watch::Sender<u64>,
    wake: Notify,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            health: RwLock::new(Health::default()),
            metrics: RwLock::new(Arc::new(String::new())),
            cycles: watch::channel(0).0,
            wake: Notify::new(),
        }
    }
}

impl Shared {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map_or_else(|p| p.into_inner().clone(), |s| s.clone())
    }

    /// How the last cycle went.
    pub fn health(&self) -> Health {
        self.health
            .read()
            .map_or_else(|p| p.into_inner().clone(), |h| h.clone())
    }

    /// The Prometheus text rendered from the latest snapshot.
    pub fn metrics_text(&self) -> Arc<String> {
        self.metrics
            .read()
            .map_or_else(|p| p.into_inner().clone(), |m| m.clone())
    }

    /// Asks for a cycle now and waits (up to `limit`) until one has finished, so a page
    /// shown after a change reflects it.
    pub async fn refresh(&self, limit: Duration) {
        let mut rx = self.cycles.subscribe();
        let seen = *rx.borrow_and_update();
        self.wake.notify_one();
        let _ = tokio::time::timeout(limit, async {
            // A cycle already running may have read the cluster before the change: wait
            // for one that started after it.
            while rx.changed().await.is_ok() {
                if *rx.borrow() >= seen + 2 {
                    break;
                }
                self.wake.notify_one();
            }
        })
        .await;
    }

    fn publish(&self, snap: Snapshot, health: Health) {
        let text = metrics::render(&snap);
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(snap);
        }
        if let Ok(mut m) = self.metrics.write() {
            *m = Arc::new(text);
        }
        self.set_health(health);
    }

    fn set_health(&self, health: Health) {
        if let Ok(mut h) = self.health.write() {
            *h = health;
        }
        self.cycles.send_modify(|c| *c += 1);
    }
}

/// Collector settings.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Time between cycles.
    pub interval: Duration,
    /// Sample retention.
    pub retention: Retention,
}

/// A group's view of one partition: the key of its status window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupPartition {
    group: String,
    tp: TopicPartition,
}

/// One record of a partition: the key of a record-timestamp lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RecordAt {
    tp: TopicPartition,
    offset: i64,
}

/// A partition's replica on one broker: the key of a log-dir size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Replica {
    broker: i32,
    tp: TopicPartition,
}

/// State kept across cycles: time-lag tables, status windows, the last good figures.
#[derive(Default)]
struct History {
    tables: HashMap<TopicPartition, OffsetTable>,
    windows: HashMap<GroupPartition, Window>,
    /// The last snapshot's groups, to carry over what a cycle could not measure.
    groups: BTreeMap<String, GroupInfo>,
    /// Every broker seen, as last seen, to keep listing one that stops answering.
    brokers: BTreeMap<i32, BrokerInfo>,
    /// Record timestamps read for time lag: (topic, partition, offset) → timestamp ms.
    record_ts: HashMap<RecordAt, i64>,
    /// Failed requests by kind since start.
    failures: BTreeMap<String, u64>,
}

impl History {
    fn failed(&mut self, request: &str) {
        *self.failures.entry(request.to_string()).or_default() += 1;
    }
}

/// Runs forever (until the task is dropped).
pub async fn run(shared: Arc<Shared>, store: Store, cluster: Cluster, config: CollectorConfig) {
    // Shared with the record-timestamp reads a cycle runs concurrently.
    let cluster = Arc::new(cluster);
    let mut history = History::default();
    let mut audit_feed = AuditFeed::default();
    // Warm the time-lag tables from the store, so a restart does not lose time lag.
    match store.recent_end_offsets(now_ms() - 3_600_000).await {
        Ok(rows) => {
            for (topic, partition, ts, latest) in rows {
                history
                    .tables
                    .entry(TopicPartition::new(topic, partition))
                    .or_default()
                    .add(ts, latest);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read offset history from the store"),
    }
    let mut cycle: u64 = 0;
    loop {
        let started = Instant::now();
        let thresholds = store.thresholds().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read thresholds; using defaults");
            HashMap::new()
        });
        match collect(&cluster, &mut history, &thresholds).await {
            Ok(mut snap) => {
                snap.cycle_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                if let Err(e) = store.record_cycle(&snap).await {
                    tracing::warn!(error = %e, "cannot store samples");
                }
                match audit_feed.import(&cluster, &store, &snap).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "imported CLI changes"),
                    Err(e) => tracing::warn!(error = %e, "audit import failed"),
                }
                let checked_at_ms = snap.taken_at_ms;
                shared.publish(
                    snap,
                    Health {
                        reachable: true,
                        error: None,
                        checked_at_ms,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "collection failed; keeping the last snapshot");
                // The client heals by itself: the next cycle dials again (any node, then
                // the bootstrap list).
                history.failed("Metadata");
                shared.set_health(Health {
                    reachable: false,
                    error: Some(e.to_string()),
                    checked_at_ms: now_ms(),
                });
            }
        }
        cycle += 1;
        if cycle % EXPIRE_EVERY == 1 {
            match store.expire(now_ms(), config.retention).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "expired samples"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot expire samples"),
            }
        }
        let _ = tokio::time::timeout(config.interval, shared.wake.notified()).await;
    }
}

/// A partition's offsets as this cycle read them (`None`: not measured, with why).
#[derive(Debug, Default)]
struct Offsets {
    earliest: BTreeMap<TopicPartition, i64>,
    latest: BTreeMap<TopicPartition, i64>,
    /// Why a partition's offsets are missing.
    missing: BTreeMap<TopicPartition, String>,
}

async fn collect(
    cluster: &Arc<Cluster>,
    history: &mut History,
    thresholds: &HashMap<String, Thresholds>,
) -> Result<Snapshot, ClientError> {
    let taken_at_ms = now_ms();
    let md = cluster.metadata(None).await?;
    let mut warnings = Vec::new();

    // Each broker's log dirs first: a broker that does not answer is unreachable, and its
    // partitions' offsets are not asked of it (that would wait out the request timeout).
    let mut sizes: HashMap<Replica, i64> = HashMap::new();
    let mut disk: HashMap<i32, i64> = HashMap::new();
    let mut unreachable: BTreeMap<i32, String> = BTreeMap::new();
    for b in &md.brokers {
        match cluster.describe_log_dirs(b.node_id).await {
            Ok(dirs) => {
                let mut total = 0;
                for d in dirs {
                    for ((t, p), size) in d.partitions {
                        total += size;
                        sizes.insert(
                            Replica {
                                broker: b.node_id,
                                tp: TopicPartition::new(t, p),
                            },
                            size,
                        );
                    }
                }
                disk.insert(b.node_id, total);
            }
            Err(e) => {
                history.failed("DescribeLogDirs");
                warnings.push(format!("DescribeLogDirs on broker {}: {e}", b.node_id));
                if !matches!(e, ClientError::Kafka { .. }) {
                    unreachable.insert(b.node_id, e.to_string());
                }
            }
        }
    }

    let offsets = read_offsets(cluster, &md, &unreachable, history, &mut warnings).await;

    // Configs that the overview needs (min.insync.replicas, cleanup.policy).
    let names: Vec<String> = md.topics.iter().map(|t| t.name.clone()).collect();
    let mut topic_configs: HashMap<String, (Option<i64>, Option<String>)> = HashMap::new();
    if !names.is_empty() {
        match cluster.describe_topics_configs(&names).await {
            Ok(all) => {
                for (name, r) in all {
                    if let Ok(entries) = r {
                        let get = |k: &str| {
                            entries
                                .iter()
                                .find(|e| e.name == k)
                                .and_then(|e| e.value.clone())
                        };
                        let min_isr = get("min.insync.replicas").and_then(|v| v.parse().ok());
                        topic_configs.insert(name, (min_isr, get("cleanup.policy")));
                    }
                }
            }
            Err(e) => {
                history.failed("DescribeConfigs");
                warnings.push(format!("DescribeConfigs: {e}"));
            }
        }
    }

    let topics: Vec<TopicInfo> = md
        .topics
        .iter()
        .map(|t| {
            let (min_insync_replicas, cleanup_policy) =
                topic_configs.get(&t.name).cloned().unwrap_or_default();
            TopicInfo {
                name: t.name.clone(),
                internal: t.is_internal,
                min_insync_replicas,
                cleanup_policy,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition::new(t.name.clone(), p.partition);
                        PartitionInfo {
                            partition: p.partition,
                            leader: p.leader,
                            replicas: p.replicas.clone(),
                            isr: p.isr.clone(),
                            earliest: offsets.earliest.get(&tp).copied().unwrap_or(-1),
                            latest: offsets.latest.get(&tp).copied().unwrap_or(-1),
                            size: sizes
                                .get(&Replica {
                                    broker: p.leader,
                                    tp: tp.clone(),
                                })
                                .copied(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    for t in &topics {
        for p in &t.partitions {
            history
                .tables
                .entry(TopicPartition::new(t.name.clone(), p.partition))
                .or_default()
                .add(taken_at_ms, p.latest);
        }
    }
    history
        .tables
        .retain(|tp, _| topics.iter().any(|x| x.name == tp.topic));

    let replicas_of = |id: i32| {
        topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.replicas.contains(&id))
            .count()
    };
    let mut brokers: Vec<BrokerInfo> = md
        .brokers
        .iter()
        .map(|b| {
            let error = unreachable.get(&b.node_id).cloned();
            let last_seen_ms = match &error {
                None => taken_at_ms,
                Some(_) => history
                    .brokers
                    .get(&b.node_id)
                    .map_or(0, |k| k.last_seen_ms),
            };
            BrokerInfo {
                id: b.node_id,
                state: if error.is_some() {
                    BrokerState::Unreachable
                } else {
                    BrokerState::Up
                },
                last_seen_ms,
                error,
                address: b.addr(),
                rack: b.rack.clone(),
                controller: md.controller_id == Some(b.node_id),
                partitions: replicas_of(b.node_id),
                leaders: topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .filter(|p| p.leader == b.node_id)
                    .count(),
                disk_bytes: disk
                    .get(&b.node_id)
                    .copied()
                    .or_else(|| history.brokers.get(&b.node_id).and_then(|k| k.disk_bytes)),
            }
        })
        .collect();

    // Metadata leaves fenced brokers out (Rill's after a few seconds' grace); a down broker
    // is what an operator most needs to see, so fenced ones (DescribeCluster v2) and any
    // broker seen earlier that has left both lists stay listed, with their last figures.
    let mut down_brokers: Vec<BrokerInfo> = match cluster.describe_cluster(true).await {
        Ok(d) => d
            .brokers
            .into_iter()
            .filter(|b| b.fenced)
            .inspect(|b| brokers.retain(|x| x.id != b.node_id))
            .map(|b| {
                let known = history.brokers.get(&b.node_id);
                BrokerInfo {
                    id: b.node_id,
                    state: BrokerState::Fenced,
                    last_seen_ms: known.map_or(0, |k| k.last_seen_ms),
                    error: Some("fenced by the controller".into()),
                    address: format!("{}:{}", b.host, b.port),
                    rack: b.rack,
                    controller: false,
                    partitions: replicas_of(b.node_id),
                    leaders: 0,
                    disk_bytes: known.and_then(|k| k.disk_bytes),
                }
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "DescribeCluster with fenced brokers");
            Vec::new()
        }
    };
    for (id, known) in &history.brokers {
        let listed = brokers.iter().chain(&down_brokers).any(|b| b.id == *id);
        if !listed && taken_at_ms - known.last_seen_ms < REMEMBER_BROKER_MS {
            down_brokers.push(BrokerInfo {
                state: BrokerState::Unreachable,
                error: Some("no longer in the cluster metadata".into()),
                controller: false,
                leaders: 0,
                partitions: replicas_of(*id),
                ..known.clone()
            });
        }
    }
    down_brokers.sort_by_key(|b| b.id);
    history.brokers = brokers
        .iter()
        .chain(&down_brokers)
        .map(|b| (b.id, b.clone()))
        .collect();
    while history.brokers.len() > MAX_REMEMBERED_BROKERS {
        let oldest = history
            .brokers
            .values()
            .min_by_key(|b| b.last_seen_ms)
            .map(|b| b.id);
        match oldest {
            Some(id) => history.brokers.remove(&id),
            None => break,
        };
    }

    let mut snap = Snapshot {
        taken_at_ms,
        cycle_ms: 0,
        cluster_id: md.cluster_id.clone(),
        controller_id: md.controller_id,
        brokers,
        fenced_brokers: down_brokers,
        topics,
        groups: Vec::new(),
        warnings,
        failures: BTreeMap::new(),
    };
    let mut group_warnings = Vec::new();
    snap.groups = collect_groups(
        cluster,
        &snap,
        &offsets,
        history,
        thresholds,
        &mut group_warnings,
    )
    .await;
    snap.warnings.extend(group_warnings);
    snap.failures = history.failures.clone();
    Ok(snap)
}

/// Log start and end offsets of every partition with a reachable leader, one leader at a
/// time so that one failure costs only that leader's partitions; a Kafka error for a batch
/// is retried topic by topic (a topic deleted meanwhile fails alone).
async fn read_offsets(
    cluster: &Cluster,
    md: &rill_client::ClusterMetadata,
    unreachable: &BTreeMap<i32, String>,
    history: &mut History,
    warnings: &mut Vec<String>,
) -> Offsets {
    let mut out = Offsets::default();
    let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    for t in &md.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.clone(), p.partition);
            if p.leader < 0 {
                out.missing.insert(tp, "no leader".into());
            } else if let Some(e) = unreachable.get(&p.leader) {
                out.missing
                    .insert(tp, format!("leader {} unreachable: {e}", p.leader));
            } else {
                by_leader.entry(p.leader).or_default().push(tp);
            }
        }
    }
    for (leader, tps) in by_leader {
        let batches: Vec<Vec<TopicPartition>> =
            match offsets_of(cluster, &tps, &mut out, history).await {
                Ok(()) => continue,
                Err(ClientError::Kafka { .. }) => {
                    // Retry topic by topic: only the failing topics go unmeasured.
                    let topics: BTreeSet<&str> = tps.iter().map(|tp| tp.topic.as_str()).collect();
                    topics
                        .into_iter()
                        .map(|t| tps.iter().filter(|tp| tp.topic == t).cloned().collect())
                        .collect()
                }
                Err(e) => {
                    warnings.push(format!("ListOffsets on broker {leader}: {e}"));
                    for tp in tps {
                        out.missing
                            .insert(tp, format!("ListOffsets on broker {leader}: {e}"));
                    }
                    continue;
                }
            };
        for batch in batches {
            if let Err(e) = offsets_of(cluster, &batch, &mut out, history).await {
                let topic = batch.first().map_or("", |tp| tp.topic.as_str());
                warnings.push(format!("ListOffsets for {topic}: {e}"));
                for tp in batch {
                    out.missing.insert(tp, format!("ListOffsets: {e}"));
                }
            }
        }
    }
    out
}

/// ListOffsets earliest and latest for `tps` into `out` (both or neither).
async fn offsets_of(
    cluster: &Cluster,
    tps: &[TopicPartition],
    out: &mut Offsets,
    history: &mut History,
) -> Result<(), ClientError> {
    let read = async {
        let earliest = cluster.list_offsets(tps, OffsetSpec::Earliest).await?;
        let latest = cluster.list_offsets(tps, OffsetSpec::Latest).await?;
        Ok::<_, ClientError>((earliest, latest))
    };
    match read.await {
        Ok((earliest, latest)) => {
            for (tp, o) in earliest {
                out.earliest.insert(tp, o.offset);
            }
            for (tp, o) in latest {
                out.latest.insert(tp, o.offset);
            }
            Ok(())
        }
        Err(e) => {
            history.failed("ListOffsets");
            Err(e)
        }
    }
}

/// What one group's describe and offset fetch gave this cycle.
struct GroupRead {
    desc: rill_client::GroupDescription,
    committed: BTreeMap<TopicPartition, rill_client::CommittedOffset>,
}

async fn collect_groups(
    cluster: &Arc<Cluster>,
    snap: &Snapshot,
    offsets: &Offsets,
    history: &mut History,
    thresholds: &HashMap<String, Thresholds>,
    warnings: &mut Vec<String>,
) -> Vec<GroupInfo> {
    let now = snap.taken_at_ms;
    let defaults = thresholds
        .get(DEFAULT_THRESHOLDS)
        .copied()
        .unwrap_or_default();
    let listed = match cluster.list_groups().await {
        Ok(l) => l.into_iter().map(|g| g.group_id).collect::<Vec<_>>(),
        Err(e) => {
            // Keep every group known, with its last figures, marked as not measured.
            history.failed("ListGroups");
            warnings.push(format!("ListGroups: {e}"));
            let error = format!("ListGroups failed: {e}");
            let groups: Vec<GroupInfo> = history
                .groups
                .values()
                .map(|g| stale_group(g, &error))
                .collect();
            return groups;
        }
    };
    let mut groups = Vec::new();
    let mut ts_reads = 0;
    let mut record_ts_used: HashMap<RecordAt, i64> = HashMap::new();
    for group_id in listed {
        let read = async {
            let desc = cluster
                .describe_group(&group_id)
                .await
                .map_err(|e| ("DescribeGroups", e))?;
            let committed = cluster
                .committed_offsets(&group_id, None)
                .await
                .map_err(|e| ("OffsetFetch", e))?;
            Ok::<_, (&str, ClientError)>(GroupRead { desc, committed })
        };
        let GroupRead { desc, committed } = match read.await {
            Ok(r) => r,
            Err((request, e)) => {
                history.failed(request);
                warnings.push(format!("{request} {group_id}: {e}"));
                let error = format!("{request} failed: {e}");
                groups.push(match history.groups.get(&group_id) {
                    Some(g) => stale_group(g, &error),
                    None => GroupInfo {
                        group_id: group_id.clone(),
                        state: "Unknown".into(),
                        protocol_type: String::new(),
                        protocol: String::new(),
                        coordinator: -1,
                        members: Vec::new(),
                        partitions: Vec::new(),
                        status: GroupStatus::Errored,
                        status_reason: error.clone(),
                        forecast: Forecast::Unknown,
                        error: Some(error),
                    },
                });
                continue;
            }
        };
        let previous = history.groups.get(&group_id).cloned();
        let mut owners: BTreeMap<TopicPartition, String> = BTreeMap::new();
        for m in &desc.members {
            for tp in &m.assignment {
                owners.insert(tp.clone(), m.member_id.clone());
            }
        }
        let keys: BTreeSet<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        let th = thresholds.get(&group_id).copied().unwrap_or(defaults);
        let keep_ms = th.window_ms();
        let has_members = !desc.members.is_empty();
        // Record timestamps for offsets older than the end-offset history, read at once
        // (the client takes `&self`), within this cycle's budget; the loop below uses them.
        let mut reads = tokio::task::JoinSet::new();
        for tp in &keys {
            let start = offsets.earliest.get(tp).copied();
            let Some(end) = offsets.latest.get(tp).copied() else {
                continue;
            };
            let Some(position) = committed.get(tp).map(|o| o.offset).or(start) else {
                continue;
            };
            let covered = history
                .tables
                .get(tp)
                .and_then(|t| t.lag_seconds(position, now))
                .is_some();
            let at = RecordAt {
                tp: tp.clone(),
                offset: position,
            };
            if position < 0 || position >= end || covered || history.record_ts.contains_key(&at) {
                continue;
            }
            if ts_reads >= MAX_TIMESTAMP_READS_PER_CYCLE {
                break;
            }
            ts_reads += 1;
            let cluster = cluster.clone();
            reads.spawn(async move {
                let r = cluster.fetch_records(&at.tp, at.offset, 1).await;
                (at, r)
            });
        }
        while let Some(done) = reads.join_next().await {
            match done {
                Ok((at, Ok(r))) => {
                    if let Some(ts) = r.records.first().map(|r| r.timestamp) {
                        history.record_ts.insert(at, ts);
                    }
                }
                Ok((at, Err(e))) => {
                    history.failed("Fetch");
                    tracing::debug!(error = %e, tp = %at.tp, "record timestamp for time lag");
                }
                Err(e) => tracing::debug!(error = %e, "record timestamp read did not finish"),
            }
        }
        let mut partitions = Vec::new();
        for tp in keys {
            let c = committed.get(&tp).map(|o| o.offset);
            let start = offsets.earliest.get(&tp).copied();
            let end = offsets.latest.get(&tp).copied();
            let lag = partition_lag(c, start, end);
            let key = GroupPartition {
                group: group_id.clone(),
                tp: tp.clone(),
            };
            let owner = owners.get(&tp).cloned();
            let Some(messages) = lag.messages else {
                // Not measured: the last good figures, marked, and no point in the window.
                let why = offsets
                    .missing
                    .get(&tp)
                    .cloned()
                    .unwrap_or_else(|| "the partition is not in the cluster metadata".into());
                let last = previous.as_ref().and_then(|g| {
                    g.partitions
                        .iter()
                        .find(|p| p.topic == tp.topic && p.partition == tp.partition)
                });
                let mut p = match last {
                    Some(p) => p.clone(),
                    None => PartitionLag {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        committed: c.unwrap_or(-1),
                        end: -1,
                        log_start: -1,
                        lag: -1,
                        basis: LagBasis::Unknown,
                        lag_seconds: None,
                        lag_seconds_method: None,
                        status: GroupStatus::Errored,
                        status_reason: String::new(),
                        measured_at_ms: 0,
                        error: None,
                        owner: None,
                    },
                };
                p.owner = owner;
                p.status = GroupStatus::Errored;
                p.status_reason = format!("not measured: {why}");
                p.error = Some(why);
                partitions.push(p);
                continue;
            };
            let (end, start) = (end.unwrap_or(-1), start.unwrap_or(-1));
            // Time lag of the next record the group reads: the committed offset, or the
            // log start when nothing is committed.
            let position = c.unwrap_or(start);
            let from_table = history
                .tables
                .get(&tp)
                .and_then(|t| t.lag_seconds(position, now));
            let time_lag = match from_table {
                Some(found) => Some(found),
                None if position >= end => Some((0.0, TimeLagMethod::CaughtUp)),
                None => {
                    let cache_key = RecordAt {
                        tp: tp.clone(),
                        offset: position,
                    };
                    history.record_ts.get(&cache_key).copied().map(|ts| {
                        record_ts_used.insert(cache_key, ts);
                        (
                            ((now - ts) as f64 / 1000.0).max(0.0),
                            TimeLagMethod::RecordTimestamp,
                        )
                    })
                }
            };
            let window = history.windows.entry(key).or_default();
            window.push(
                LagPoint {
                    ts_ms: now,
                    committed: c.unwrap_or(-1),
                    end,
                    lag: messages,
                },
                keep_ms,
            );
            let lag_seconds = time_lag.map(|(s, _)| s);
            let (status, reason) = window.status(lag_seconds, has_members, &th);
            partitions.push(PartitionLag {
                topic: tp.topic.clone(),
                partition: tp.partition,
                committed: c.unwrap_or(-1),
                end,
                log_start: start,
                lag: messages,
                basis: lag.basis,
                lag_seconds,
                lag_seconds_method: time_lag.map(|(_, m)| m),
                status,
                status_reason: reason,
                measured_at_ms: now,
                error: None,
                owner,
            });
        }
        // The first partition with the worst status (max_by_key keeps the last of equals).
        let worst = partitions
            .iter()
            .rev()
            .max_by_key(|p| p.status)
            .filter(|p| p.status != GroupStatus::Ok || p.lag > 0);
        let (mut status, mut status_reason) = match worst {
            Some(p) => (
                p.status,
                format!("{}-{}: {}", p.topic, p.partition, p.status_reason),
            ),
            None if partitions.is_empty() => (GroupStatus::Ok, "no partitions to consume".into()),
            None => (GroupStatus::Ok, "caught up".into()),
        };
        // The offsets threshold holds for the group's total too: many partitions each under
        // it can still add up to a backlog the operator set out to hear about.
        let total: i64 = partitions
            .iter()
            .filter(|p| p.error.is_none() && p.lag >= 0)
            .map(|p| p.lag)
            .sum();
        if status == GroupStatus::Ok && total > th.max_lag {
            status = GroupStatus::Lagging;
            status_reason = format!("total lag {total} above the threshold {}", th.max_lag);
        }
        let no_history = Window::default();
        let forecast = lag::forecast(partitions.iter().map(|p| {
            let w = history.windows.get(&GroupPartition {
                group: group_id.clone(),
                tp: TopicPartition::new(p.topic.clone(), p.partition),
            });
            (
                w.unwrap_or(&no_history),
                p.error.is_none().then_some(p.lag).filter(|l| *l >= 0),
            )
        }));
        groups.push(GroupInfo {
            group_id: desc.group_id.clone(),
            state: desc.state.clone(),
            protocol_type: desc.protocol_type.clone(),
            protocol: desc.protocol.clone(),
            coordinator: desc.coordinator,
            members: desc
                .members
                .iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.client_host.clone(),
                    assignment: m
                        .assignment
                        .iter()
                        .map(|tp| (tp.topic.clone(), tp.partition))
                        .collect(),
                })
                .collect(),
            partitions,
            status,
            status_reason,
            forecast,
            error: None,
        });
    }
    history
        .windows
        .retain(|k, _| groups.iter().any(|x| x.group_id == k.group));
    history.record_ts = record_ts_used;
    history.groups = groups
        .iter()
        .map(|g| (g.group_id.clone(), g.clone()))
        .collect();
    groups
}

/// `g` as last measured, marked as not measured this cycle.
fn stale_group(g: &GroupInfo, error: &str) -> GroupInfo {
    let mut g = g.clone();
    for p in &mut g.partitions {
        if p.error.is_none() {
            p.error = Some(error.to_string());
        }
        p.status = GroupStatus::Errored;
        p.status_reason = format!("not measured: {error}");
    }
    g.status = GroupStatus::Errored;
    g.status_reason = format!("not measured: {error}");
    g.forecast = Forecast::Unknown;
    g.error = Some(error.to_string());
    g
}
