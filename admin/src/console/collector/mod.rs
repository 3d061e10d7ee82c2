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
//!
//! `offsets.rs` reads every partition's log start and end; `groups.rs` describes the
//! groups and computes their lag and status; this file runs the cycle.

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

mod groups;
mod offsets;
mod samples;

use groups::collect_groups;
use offsets::{read_offsets, Offsets};
use samples::OffsetSampler;

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
    /// The snapshot's series, rendered once per successful cycle.
    metrics: RwLock<Arc<String>>,
    /// What `/metrics` answers: `metrics` followed by the health series, put together when
    /// either changes so a scrape of tens of MB is a reference count, not a copy.
    scrape: RwLock<bytes::Bytes>,
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
            scrape: RwLock::new(bytes::Bytes::from(metrics::health_text(
                &Health::default(),
                &Snapshot::default(),
            ))),
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

    /// The `/metrics` body: the series of the latest snapshot and the console's health.
    pub fn scrape_body(&self) -> bytes::Bytes {
        self.scrape
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

    fn publish(&self, snap: Snapshot, health: Health, scope: &metrics::Scope) {
        let text = metrics::render(&snap, scope);
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(snap);
        }
        if let Ok(mut m) = self.metrics.write() {
            *m = Arc::new(text);
        }
        self.set_health(health);
    }

    fn set_health(&self, health: Health) {
        let text = self
            .metrics
            .read()
            .map_or_else(|p| p.into_inner().clone(), |m| m.clone());
        let tail = metrics::health_text(&health, &self.snapshot());
        let mut body = String::with_capacity(text.len() + tail.len());
        body.push_str(&text);
        body.push_str(&tail);
        if let Ok(mut b) = self.scrape.write() {
            *b = bytes::Bytes::from(body);
        }
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
    /// What `/metrics` covers.
    pub metrics: metrics::Scope,
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
    let mut sampler = OffsetSampler::default();
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
                let offsets = sampler.samples(&snap);
                if let Err(e) = store.record_cycle(&snap, &offsets).await {
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
                    &config.metrics,
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
