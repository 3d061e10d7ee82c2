//! The collector: one task that polls the cluster through the Kafka protocol every
//! interval (Metadata, ListOffsets earliest/latest, DescribeConfigs, DescribeLogDirs,
//! ListGroups, DescribeGroups, OffsetFetch), builds a [`Snapshot`], swaps it in for pages
//! and `/metrics`, and appends samples to the store. When the cluster cannot be reached the
//! last snapshot stays and [`Health`] says why, so every page can show a banner.
//! After each cycle it imports the CLI's new changes from `__rill_audit` into the audit
//! log ([`super::audit_feed`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rill_client::{ClientError, Cluster, ConnectionConfig, OffsetSpec, TopicPartition};
use tokio::sync::{watch, Notify};

use super::audit_feed::AuditFeed;
use super::lag::{self, LagPoint, OffsetTable, Thresholds};
use super::metrics;
use super::snapshot::{
    BrokerInfo, GroupInfo, GroupStatus, Health, MemberInfo, PartitionInfo, PartitionLag, Snapshot,
    TopicInfo,
};
use super::store::{self, Retention, Store, DEFAULT_THRESHOLDS};

/// Cycles between two expiry passes over the store.
const EXPIRE_EVERY: u64 = 30;

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
    /// `host:port[,...]`.
    pub bootstrap: String,
    /// Time between cycles.
    pub interval: Duration,
    /// Per-request limit.
    pub request_timeout: Duration,
    /// Sample retention.
    pub retention: Retention,
}

/// State kept across cycles: time-lag tables and status windows.
#[derive(Default)]
struct History {
    tables: HashMap<(String, i32), OffsetTable>,
    windows: HashMap<(String, String, i32), VecDeque<LagPoint>>,
}

/// Runs forever (until the task is dropped).
pub async fn run(shared: Arc<Shared>, store: Store, config: CollectorConfig) {
    let mut cluster: Option<Cluster> = None;
    let mut history = History::default();
    let mut audit_feed = AuditFeed::default();
    // Warm the time-lag tables from the store, so a restart does not lose time lag.
    match store.recent_end_offsets(store::now_ms() - 3_600_000).await {
        Ok(rows) => {
            for (topic, partition, ts, latest) in rows {
                history
                    .tables
                    .entry((topic, partition))
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
        match collect(&mut cluster, &config, &mut history, &thresholds).await {
            Ok(mut snap) => {
                snap.cycle_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                if let Err(e) = store.record_cycle(&snap).await {
                    tracing::warn!(error = %e, "cannot store samples");
                }
                if let Some(c) = cluster.as_mut() {
                    match audit_feed.import(c, &store, &snap).await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(rows = n, "imported CLI changes"),
                        Err(e) => tracing::warn!(error = %e, "audit import failed"),
                    }
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
                // Reconnect from the bootstrap list next time.
                cluster = None;
                shared.set_health(Health {
                    reachable: false,
                    error: Some(e.to_string()),
                    checked_at_ms: store::now_ms(),
                });
            }
        }
        cycle += 1;
        if cycle % EXPIRE_EVERY == 1 {
            match store.expire(store::now_ms(), config.retention).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "expired samples"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot expire samples"),
            }
        }
        let _ = tokio::time::timeout(config.interval, shared.wake.notified()).await;
    }
}

async fn collect(
    slot: &mut Option<Cluster>,
    config: &CollectorConfig,
    history: &mut History,
    thresholds: &HashMap<String, Thresholds>,
) -> Result<Snapshot, ClientError> {
    if slot.is_none() {
        let cc = ConnectionConfig {
            client_id: "rill-console".into(),
            connect_timeout: config.request_timeout.min(Duration::from_secs(3)),
            request_timeout: config.request_timeout,
            ..ConnectionConfig::default()
        };
        *slot = Some(Cluster::connect(&config.bootstrap, cc).await?);
    }
    let Some(cluster) = slot.as_mut() else {
        return Err(ClientError::NoBrokerReachable("not connected".into()));
    };
    let taken_at_ms = store::now_ms();
    let md = cluster.metadata(None).await?;
    let mut warnings = Vec::new();

    // Offsets, only for partitions with a leader (others would be retried until timeout).
    let led: Vec<TopicPartition> = md
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.leader >= 0)
                .map(|p| TopicPartition::new(t.name.clone(), p.partition))
        })
        .collect();
    let mut earliest = BTreeMap::new();
    let mut latest = BTreeMap::new();
    if !led.is_empty() {
        match cluster.list_offsets(&led, OffsetSpec::Earliest).await {
            Ok(o) => earliest = o,
            Err(e) => warnings.push(format!("ListOffsets (earliest): {e}")),
        }
        match cluster.list_offsets(&led, OffsetSpec::Latest).await {
            Ok(o) => latest = o,
            Err(e) => warnings.push(format!("ListOffsets (latest): {e}")),
        }
    }

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
            Err(e) => warnings.push(format!("DescribeConfigs: {e}")),
        }
    }

    // Sizes from each broker's log dirs (sizes of the leader's replica on the topic page).
    let mut sizes: HashMap<(i32, String, i32), i64> = HashMap::new();
    let mut disk: HashMap<i32, i64> = HashMap::new();
    for b in &md.brokers {
        match cluster.describe_log_dirs(b.node_id).await {
            Ok(dirs) => {
                let mut total = 0;
                for d in dirs {
                    for ((t, p), size) in d.partitions {
                        total += size;
                        sizes.insert((b.node_id, t, p), size);
                    }
                }
                disk.insert(b.node_id, total);
            }
            Err(e) => warnings.push(format!("DescribeLogDirs on broker {}: {e}", b.node_id)),
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
                            earliest: earliest.get(&tp).map_or(-1, |o| o.offset),
                            latest: latest.get(&tp).map_or(-1, |o| o.offset),
                            size: sizes.get(&(p.leader, t.name.clone(), p.partition)).copied(),
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
                .entry((t.name.clone(), p.partition))
                .or_default()
                .add(taken_at_ms, p.latest);
        }
    }
    history
        .tables
        .retain(|(t, _), _| topics.iter().any(|x| &x.name == t));

    let mut brokers: Vec<BrokerInfo> = md
        .brokers
        .iter()
        .map(|b| BrokerInfo {
            id: b.node_id,
            address: b.addr(),
            rack: b.rack.clone(),
            controller: md.controller_id == Some(b.node_id),
            partitions: topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.replicas.contains(&b.node_id))
                .count(),
            leaders: topics
                .iter()
                .flat_map(|t| &t.partitions)
                .filter(|p| p.leader == b.node_id)
                .count(),
            disk_bytes: disk.get(&b.node_id).copied(),
        })
        .collect();

    // Metadata leaves fenced brokers out (Rill's after a few seconds' grace); a down broker
    // is what an operator most needs to see. Clusters without DescribeCluster v2 just show
    // none.
    let fenced_brokers: Vec<BrokerInfo> = match cluster.describe_cluster(true).await {
        Ok(d) => d
            .brokers
            .into_iter()
            .filter(|b| b.fenced)
            .inspect(|b| brokers.retain(|x| x.id != b.node_id))
            .map(|b| BrokerInfo {
                id: b.node_id,
                address: format!("{}:{}", b.host, b.port),
                rack: b.rack,
                controller: false,
                partitions: topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .filter(|p| p.replicas.contains(&b.node_id))
                    .count(),
                leaders: 0,
                disk_bytes: None,
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "DescribeCluster with fenced brokers");
            Vec::new()
        }
    };
    let mut snap = Snapshot {
        taken_at_ms,
        cycle_ms: 0,
        cluster_id: md.cluster_id.clone(),
        controller_id: md.controller_id,
        brokers,
        fenced_brokers,
        topics,
        groups: Vec::new(),
        warnings,
    };
    let mut group_warnings = Vec::new();
    snap.groups =
        match collect_groups(cluster, &snap, history, thresholds, &mut group_warnings).await {
            Ok(g) => g,
            Err(e) => {
                group_warnings.push(format!("ListGroups: {e}"));
                Vec::new()
            }
        };
    snap.warnings.extend(group_warnings);
    Ok(snap)
}

async fn collect_groups(
    cluster: &mut Cluster,
    snap: &Snapshot,
    history: &mut History,
    thresholds: &HashMap<String, Thresholds>,
    warnings: &mut Vec<String>,
) -> Result<Vec<GroupInfo>, ClientError> {
    let ends = snap.end_offsets();
    let now = snap.taken_at_ms;
    let defaults = thresholds
        .get(DEFAULT_THRESHOLDS)
        .copied()
        .unwrap_or_default();
    let mut listed = cluster.list_groups().await?;
    listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let mut groups = Vec::new();
    for g in listed {
        let desc = match cluster.describe_group(&g.group_id).await {
            Ok(d) => d,
            Err(e) => {
                warnings.push(format!("DescribeGroups {}: {e}", g.group_id));
                continue;
            }
        };
        let committed = match cluster.committed_offsets(&g.group_id, None).await {
            Ok(c) => c,
            Err(e) => {
                warnings.push(format!("OffsetFetch {}: {e}", g.group_id));
                continue;
            }
        };
        let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
        for m in &desc.members {
            for tp in &m.assignment {
                owners.insert((tp.topic.clone(), tp.partition), m.member_id.clone());
            }
        }
        let mut keys: Vec<(String, i32)> = committed
            .keys()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .chain(owners.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        let th = thresholds.get(&g.group_id).copied().unwrap_or(defaults);
        let has_members = !desc.members.is_empty();
        let mut status = (GroupStatus::Ok, String::from("caught up"));
        let mut partitions = Vec::new();
        for (topic, partition) in keys {
            let c = committed
                .get(&TopicPartition::new(topic.clone(), partition))
                .map_or(-1, |o| o.offset);
            let end = ends.get(&(topic.clone(), partition)).copied().unwrap_or(-1);
            let lag = if c < 0 || end < 0 {
                -1
            } else {
                (end - c).max(0)
            };
            let lag_seconds = if c < 0 {
                None
            } else {
                history
                    .tables
                    .get(&(topic.clone(), partition))
                    .and_then(|t| t.lag_seconds(c, now))
            };
            let window = history
                .windows
                .entry((g.group_id.clone(), topic.clone(), partition))
                .or_default();
            window.push_back(LagPoint {
                ts_ms: now,
                committed: c,
                lag,
            });
            while window.len() > lag::STATUS_WINDOW {
                window.pop_front();
            }
            let s = lag::partition_status(window, lag_seconds, has_members, &th);
            if s.0 > status.0 {
                status = (s.0, format!("{topic}-{partition}: {}", s.1));
            }
            partitions.push(PartitionLag {
                owner: owners.get(&(topic.clone(), partition)).cloned(),
                topic,
                partition,
                committed: c,
                end,
                lag,
                lag_seconds,
            });
        }
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
            status: status.0,
            status_reason: status.1,
        });
    }
    history
        .windows
        .retain(|(g, _, _), _| groups.iter().any(|x| &x.group_id == g));
    Ok(groups)
}
