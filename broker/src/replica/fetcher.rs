//! Replica fetchers: how a follower keeps its log in step with the leader's (Kafka's
//! `ReplicaFetcherThread`).
//!
//! One tokio task per source broker: it fetches every partition this node follows whose
//! leader is that broker, in one Fetch request (`replica_id` = this node, the current leader
//! epoch, `fetch_offset` = the local log end, `last_fetched_epoch`), long-polling like a
//! consumer. Batches are appended as they are (`append_as_follower`) and the follower's high
//! watermark follows the leader's, capped by the local log end.
//!
//! Before a partition is fetched (on becoming follower, on a new leader epoch, after a
//! diverging epoch, FENCED_LEADER_EPOCH or an append that does not fit) it is truncated:
//! OffsetForLeaderEpoch (KIP-101/279) for the latest local epoch, then `truncate_to` the end
//! offset the two logs agree on. Errors pause the partition (or the whole fetcher, for
//! connection errors) with a backoff doubling from 50 ms up to `replica.fetch.backoff.ms`.
//!
//! The set of partitions comes from the replica manager on every metadata image
//! ([`ReplicaFetchers::reconcile`]); a fetcher with nothing left to fetch is stopped. Appends
//! and truncations check, under the partition's log lock, that the partition still follows
//! in the epoch the fetch was made in, so nothing fetched from an old leader lands after a
//! leadership change.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId as WireBrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use uuid::Uuid;

use super::throttle::{Quota, Throttles};
use super::Partition;
use crate::config::BrokerConfig;
use crate::metadata::MetadataImage;
use crate::metadata::TopicConfigs;
use crate::types::{BrokerId, LeaderEpoch, Offset, TopicPartition};
use rill_client::{Connection, ConnectionConfig};

/// First pause after an error; doubles up to `replica.fetch.backoff.ms`.
const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// What the fetchers need from the broker config.
#[derive(Debug, Clone)]
pub struct FetcherConfig {
    /// This node.
    pub node: BrokerId,
    /// `replica.fetch.wait.max.ms`.
    pub max_wait_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub min_bytes: i32,
    /// `replica.fetch.max.bytes` (per partition).
    pub partition_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub max_bytes: i32,
    /// `replica.fetch.backoff.ms`: the longest pause after an error.
    pub backoff_max: Duration,
    /// TLS and SASL towards the leaders (the inter-broker listener's).
    pub security: rill_client::security::ClientSecurity,
    /// `replica.socket.timeout.ms`.
    pub socket_timeout: Duration,
    /// `kafka_server_brokertopicmetrics_replicationbytesin_total`, when metrics are kept.
    pub replication_bytes_in: Option<prometheus::IntCounter>,
}

impl FetcherConfig {
    /// From the broker's `replica.*` settings.
    pub fn from_broker(c: &BrokerConfig) -> FetcherConfig {
        let r = &c.replication;
        FetcherConfig {
            node: BrokerId(c.node_id),
            max_wait_ms: r.fetch_wait_max_ms,
            min_bytes: r.fetch_min_bytes,
            partition_max_bytes: r.fetch_max_bytes,
            max_bytes: r.fetch_response_max_bytes,
            backoff_max: Duration::from_millis(r.fetch_backoff_ms).max(BACKOFF_MIN),
            security: Default::default(),
            socket_timeout: Duration::from_millis(r.socket_timeout_ms),
            replication_bytes_in: None,
        }
    }
}

/// Where one followed partition stands.
#[derive(Clone)]
struct Follow {
    partition: Arc<Partition>,
    topic_id: Uuid,
    epoch: LeaderEpoch,
    /// OffsetForLeaderEpoch must run before the next fetch.
    truncating: bool,
    /// Paused after an error until then.
    delayed_until: Option<Instant>,
    backoff: Duration,
    /// Fetch from here instead of the log end (the leader's log start moved past our end).
    fetch_from: Option<i64>,
    /// Under the follower replication throttle (`throttle.rs`): listed in the topic's
    /// `follower.replication.throttled.replicas` for this node, and not in the ISR.
    throttled: bool,
}

impl Follow {
    fn delay(&mut self, max: Duration) {
        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, max);
        self.delayed_until = Some(Instant::now() + self.backoff);
    }

    fn ok(&mut self) {
        self.backoff = BACKOFF_MIN / 2;
        self.delayed_until = None;
    }
}

/// State shared between the manager and one fetcher task.
struct Shared {
    source: BrokerId,
    addr: Mutex<String>,
    partitions: Mutex<HashMap<TopicPartition, Follow>>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Follow>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Updates one partition's state if it is still followed in `epoch` with the same log.
    fn update(&self, tp: &TopicPartition, epoch: LeaderEpoch, f: impl FnOnce(&mut Follow)) {
        if let Some(s) = self.lock().get_mut(tp) {
            if s.epoch == epoch {
                f(s);
            }
        }
    }
}

struct Fetcher {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// Every replica fetcher of this node, one per source broker.
pub struct ReplicaFetchers {
    cfg: Arc<FetcherConfig>,
    throttles: Arc<Throttles>,
    runtime: Option<tokio::runtime::Handle>,
    fetchers: Mutex<HashMap<BrokerId, Fetcher>>,
}

impl ReplicaFetchers {
    /// No fetchers yet. Fetcher tasks run on the runtime current at creation (none in plain
    /// unit tests: then nothing is fetched).
    pub fn new(cfg: FetcherConfig) -> ReplicaFetchers {
        ReplicaFetchers {
            cfg: Arc::new(cfg),
            throttles: Arc::new(Throttles::default()),
            runtime: tokio::runtime::Handle::try_current().ok(),
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `throttles` (shared with the replica manager, which sets the rates) for the
    /// follower replication throttle.
    pub fn with_throttles(mut self, throttles: Arc<Throttles>) -> ReplicaFetchers {
        self.throttles = throttles;
        self
    }

    /// Points the fetchers at the leaders `image` names for the hosted partitions this node
    /// follows: new partitions (and those with a new leader epoch) start with truncation,
    /// partitions no longer followed are dropped, fetchers left without partitions stop.
    pub fn reconcile(
        &self,
        image: &MetadataImage,
        hosted: &HashMap<TopicPartition, Arc<Partition>>,
        topic_configs: &TopicConfigs,
    ) {
        let me = self.cfg.node;
        type Wanted = (TopicPartition, Arc<Partition>, LeaderEpoch, bool);
        let mut want: HashMap<BrokerId, Vec<Wanted>> = HashMap::new();
        for (tp, p) in hosted {
            let Some(meta) = image.partition(&tp.topic, tp.partition) else {
                continue;
            };
            if meta.leader == me || meta.leader.0 < 0 || !meta.replicas.contains(&me) {
                continue;
            }
            if !image.brokers.contains_key(&meta.leader) {
                continue;
            }
            let throttled = !meta.isr.contains(&me)
                && topic_configs
                    .by_name(image, &tp.topic)
                    .is_some_and(|c| c.follower_throttled.contains(tp.partition, me));
            want.entry(meta.leader).or_default().push((
                tp.clone(),
                p.clone(),
                meta.leader_epoch,
                throttled,
            ));
        }
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<BrokerId> = fetchers
            .keys()
            .filter(|id| !want.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(f) = fetchers.remove(&id) {
                tracing::debug!(source = id.0, "stopping replica fetcher");
                f.task.abort();
            }
        }
        for (source, parts) in want {
            let Some(info) = image.brokers.get(&source) else {
                continue;
            };
            let addr = format!("{}:{}", info.host, info.port);
            let f = match fetchers.entry(source) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let Some(rt) = &self.runtime else {
                        continue;
                    };
                    let shared = Arc::new(Shared {
                        source,
                        addr: Mutex::new(addr.clone()),
                        partitions: Mutex::new(HashMap::new()),
                        wake: Notify::new(),
                    });
                    let task = rt.spawn(run(
                        shared.clone(),
                        self.cfg.clone(),
                        self.throttles.clone(),
                    ));
                    tracing::debug!(source = source.0, addr = %addr, "starting replica fetcher");
                    e.insert(Fetcher { shared, task })
                }
            };
            *f.shared.addr.lock().unwrap_or_else(|p| p.into_inner()) = addr;
            let mut changed = false;
            {
                let mut map = f.shared.lock();
                let keep: std::collections::HashSet<&TopicPartition> =
                    parts.iter().map(|(tp, _, _, _)| tp).collect();
                let before = map.len();
                map.retain(|tp, _| keep.contains(tp));
                changed |= map.len() != before;
                for (tp, p, epoch, throttled) in &parts {
                    let same = map
                        .get(tp)
                        .is_some_and(|s| s.epoch == *epoch && Arc::ptr_eq(&s.partition, p));
                    if same {
                        // The ISR or the topic's throttle list may have changed.
                        if let Some(s) = map.get_mut(tp) {
                            s.throttled = *throttled;
                        }
                    } else {
                        map.insert(
                            tp.clone(),
                            Follow {
                                partition: p.clone(),
                                topic_id: p.topic_id,
                                epoch: *epoch,
                                truncating: true,
                                delayed_until: None,
                                backoff: BACKOFF_MIN / 2,
                                fetch_from: None,
                                throttled: *throttled,
                            },
                        );
                        tracing::info!(partition = %tp, leader = source.0, epoch = epoch.0, "following partition");
                        changed = true;
                    }
                }
            }
            if changed {
                f.shared.wake.notify_one();
            }
        }
    }

    /// The partitions each fetcher follows, for tests and status.
    pub fn assignments(&self) -> BTreeMap<BrokerId, Vec<TopicPartition>> {
        let fetchers = self.fetchers.lock().unwrap_or_else(|p| p.into_inner());
        fetchers
            .iter()
            .map(|(id, f)| {
                let mut v: Vec<_> = f.shared.lock().keys().cloned().collect();
                v.sort();
                (*id, v)
            })
            .collect()
    }

    /// Stops every fetcher.
    pub fn stop_all(&self) {
        let mut fetchers = self.fetchers.lock().unwrap_or_else(|p| p.into_inner());
        for (_, f) in fetchers.drain() {
            f.task.abort();
        }
    }
}

impl Drop for ReplicaFetchers {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A transport-level failure: the connection is dropped and the fetcher backs off.
type RoundResult = Result<(), rill_client::ClientError>;

/// One fetcher task: truncation rounds, then fetch rounds, until aborted.
async fn run(shared: Arc<Shared>, cfg: Arc<FetcherConfig>, throttles: Arc<Throttles>) {
    let mut conn: Option<Connection> = None;
    let mut backoff = BACKOFF_MIN / 2;
    loop {
        let now = Instant::now();
        let (truncating, fetching, next_wake) = {
            let map = shared.lock();
            let mut t = Vec::new();
            let mut f = Vec::new();
            let mut next: Option<Instant> = None;
            for (tp, s) in map.iter() {
                match s.delayed_until {
                    Some(at) if at > now => next = Some(next.map_or(at, |n| n.min(at))),
                    _ if s.truncating => t.push((tp.clone(), s.clone())),
                    _ => f.push((tp.clone(), s.clone())),
                }
            }
            (t, f, next)
        };
        if truncating.is_empty() && fetching.is_empty() {
            match next_wake {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = shared.wake.notified() => {}
                    }
                }
                None => shared.wake.notified().await,
            }
            continue;
        }
        if conn.as_ref().is_none_or(|c| !c.is_usable()) {
            let addr = shared
                .addr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let config = ConnectionConfig {
                client_id: format!("rill-replica-fetcher-{}-{}", cfg.node.0, shared.source.0),
                connect_timeout: cfg.socket_timeout,
                request_timeout: cfg.socket_timeout
                    + Duration::from_millis(cfg.max_wait_ms.max(0) as u64),
                security: cfg.security.clone(),
                ..ConnectionConfig::default()
            };
            match Connection::connect(&addr, config).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    backoff = (backoff * 2).clamp(BACKOFF_MIN, cfg.backoff_max);
                    tracing::debug!(source = shared.source.0, addr = %addr, error = %e, "cannot reach the leader; backing off");
                    pause(&shared, backoff).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let result = if truncating.is_empty() {
            fetch_round(c, &shared, &cfg, &throttles.follower, fetching).await
        } else {
            truncate_round(c, &shared, &cfg, truncating).await
        };
        match result {
            Ok(()) => backoff = BACKOFF_MIN / 2,
            Err(e) => {
                conn = None;
                backoff = (backoff * 2).clamp(BACKOFF_MIN, cfg.backoff_max);
                tracing::debug!(source = shared.source.0, error = %e, "replica fetch failed; backing off");
                pause(&shared, backoff).await;
            }
        }
    }
}

/// Sleeps `d`, or less if the partition set changes.
async fn pause(shared: &Shared, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shared.wake.notified() => {}
    }
}

/// Where a follower truncates to, given the leader's OffsetForLeaderEpoch answer
/// (`leader_epoch`, `leader_end`) for the follower's latest epoch: Kafka's
/// `getOffsetTruncationState`. The second value is false when another round is needed (the
/// leader answered with an epoch this log does not have).
pub fn truncation_point(local: &Partition, leader_epoch: i32, leader_end: i64) -> (Offset, bool) {
    let leo = local.log_end_offset().0;
    if leader_end < 0 {
        // The leader knows nothing of our epochs: keep only what is committed.
        return (Offset(local.high_watermark().0.min(leo)), true);
    }
    if leader_epoch < 0 {
        return (Offset(leader_end.min(leo)), true);
    }
    match local.end_offset_for_epoch(LeaderEpoch(leader_epoch)) {
        Some((epoch, end)) if epoch.0 != leader_epoch => (Offset(end.0.min(leo)), false),
        Some((_, end)) => (Offset(end.0.min(leader_end).min(leo)), true),
        None => (Offset(leader_end.min(leo)), true),
    }
}

async fn truncate_round(
    c: &mut Connection,
    shared: &Shared,
    cfg: &FetcherConfig,
    parts: Vec<(TopicPartition, Follow)>,
) -> RoundResult {
    // Partitions without a leader epoch in their log need no request: empty logs have nothing
    // to truncate, others keep what is known to be committed.
    let mut ask: Vec<(TopicPartition, Follow, i32)> = Vec::new();
    for (tp, s) in parts {
        let p = &s.partition;
        match p.latest_epoch() {
            Some(e) => ask.push((tp, s, e.0)),
            None => {
                if p.log_end_offset() > p.log_start_offset() {
                    let hw = p.high_watermark();
                    if let Err(e) = p.truncate_as_follower(hw, s.epoch) {
                        tracing::warn!(partition = %tp, error = %e, "truncation failed");
                        shared.update(&tp, s.epoch, |f| f.delay(cfg.backoff_max));
                        continue;
                    }
                }
                shared.update(&tp, s.epoch, |f| {
                    f.truncating = false;
                    f.ok();
                });
            }
        }
    }
    if ask.is_empty() {
        return Ok(());
    }
    let version = c.version_for::<OffsetForLeaderEpochRequest>()?;
    let mut topics: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for (tp, s, latest) in &ask {
        topics.entry(tp.topic.clone()).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(s.epoch.0)
                .with_leader_epoch(*latest),
        );
    }
    let mut req = OffsetForLeaderEpochRequest::default().with_topics(
        topics
            .into_iter()
            .map(|(name, partitions)| {
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    );
    if version >= 3 {
        req = req.with_replica_id(WireBrokerId(cfg.node.0));
    }
    let resp = c.send_version(req, version).await?;
    let mut answered = std::collections::HashSet::new();
    for t in resp.topics {
        let name = t.topic.0.to_string();
        for r in t.partitions {
            let tp = TopicPartition::new(name.clone(), r.partition);
            let Some((_, s, _)) = ask.iter().find(|(x, _, _)| *x == tp) else {
                continue;
            };
            answered.insert(tp.clone());
            if r.error_code != 0 {
                tracing::debug!(partition = %tp, error = r.error_code, "OffsetForLeaderEpoch refused; retrying later");
                shared.update(&tp, s.epoch, |f| f.delay(cfg.backoff_max));
                continue;
            }
            let (offset, complete) = truncation_point(&s.partition, r.leader_epoch, r.end_offset);
            match s.partition.truncate_as_follower(offset, s.epoch) {
                Ok(true) => shared.update(&tp, s.epoch, |f| {
                    f.truncating = !complete;
                    f.ok();
                }),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(partition = %tp, error = %e, "truncation failed");
                    shared.update(&tp, s.epoch, |f| f.delay(cfg.backoff_max));
                }
            }
        }
    }
    for (tp, s, _) in &ask {
        if !answered.contains(tp) {
            shared.update(tp, s.epoch, |f| f.delay(cfg.backoff_max));
        }
    }
    Ok(())
}

async fn fetch_round(
    c: &mut Connection,
    shared: &Shared,
    cfg: &FetcherConfig,
    quota: &Quota,
    parts: Vec<(TopicPartition, Follow)>,
) -> RoundResult {
    // Throttled partitions wait while the follower quota is used up (Kafka leaves them out of
    // the fetch) and otherwise take at most what it holds.
    let budget = if parts.iter().any(|(_, s)| s.throttled) {
        quota.available()
    } else {
        None
    };
    let parts: Vec<(TopicPartition, Follow)> = if budget == Some(0) {
        let until = Instant::now() + quota.wait();
        parts
            .into_iter()
            .filter(|(tp, s)| {
                if s.throttled {
                    shared.update(tp, s.epoch, |f| f.delayed_until = Some(until));
                }
                !s.throttled
            })
            .collect()
    } else {
        parts
    };
    if parts.is_empty() {
        return Ok(());
    }
    let version = c.version_for::<FetchRequest>()?;
    let by_id = version >= 13;
    // Topic (name, id) -> partitions with the offset each was fetched at.
    let mut topics: BTreeMap<(String, Uuid), Vec<FetchPartition>> = BTreeMap::new();
    let mut asked: HashMap<TopicPartition, (Follow, i64)> = HashMap::new();
    for (tp, s) in parts {
        let p = &s.partition;
        let offset = s.fetch_from.unwrap_or(p.log_end_offset().0);
        let max_bytes = match budget {
            Some(b) if s.throttled => cfg
                .partition_max_bytes
                .min(i32::try_from(b).unwrap_or(i32::MAX)),
            _ => cfg.partition_max_bytes,
        };
        let mut fp = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(max_bytes);
        if version >= 9 {
            fp = fp.with_current_leader_epoch(s.epoch.0);
        }
        if version >= 12 {
            fp = fp.with_last_fetched_epoch(p.latest_epoch().map_or(-1, |e| e.0));
        }
        if version >= 5 {
            fp = fp.with_log_start_offset(p.log_start_offset().0);
        }
        topics
            .entry((tp.topic.clone(), s.topic_id))
            .or_default()
            .push(fp);
        asked.insert(tp, (s, offset));
    }
    let names_by_id: HashMap<Uuid, String> =
        topics.keys().map(|(n, id)| (*id, n.clone())).collect();
    let mut req = FetchRequest::default()
        .with_max_wait_ms(cfg.max_wait_ms)
        .with_min_bytes(cfg.min_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|((name, id), partitions)| {
                    let t = FetchTopic::default().with_partitions(partitions);
                    if by_id {
                        t.with_topic_id(id)
                    } else {
                        t.with_topic(TopicName(StrBytes::from_string(name)))
                    }
                })
                .collect(),
        );
    if version >= 3 {
        req = req.with_max_bytes(cfg.max_bytes);
    }
    if version >= 15 {
        req = req
            .with_replica_state(ReplicaState::default().with_replica_id(WireBrokerId(cfg.node.0)));
    } else {
        req = req.with_replica_id(WireBrokerId(cfg.node.0));
    }
    let resp = c.send_version(req, version).await?;
    if resp.error_code != 0 {
        tracing::debug!(
            source = shared.source.0,
            error = resp.error_code,
            "fetch refused"
        );
        for (tp, (s, _)) in &asked {
            shared.update(tp, s.epoch, |f| f.delay(cfg.backoff_max));
        }
        return Ok(());
    }
    for t in resp.responses {
        let name = if by_id {
            match names_by_id.get(&t.topic_id) {
                Some(n) => n.clone(),
                None => continue,
            }
        } else {
            t.topic.0.to_string()
        };
        for pd in t.partitions {
            let tp = TopicPartition::new(name.clone(), pd.partition_index);
            let Some((s, offset)) = asked.get(&tp) else {
                continue;
            };
            if s.throttled {
                quota.record(pd.records.as_ref().map_or(0, |r| r.len()));
            }
            handle_partition(shared, cfg, version, &tp, s, *offset, pd);
        }
    }
    Ok(())
}

fn handle_partition(
    shared: &Shared,
    cfg: &FetcherConfig,
    version: i16,
    tp: &TopicPartition,
    s: &Follow,
    offset: i64,
    pd: kafka_protocol::messages::fetch_response::PartitionData,
) {
    let p = &s.partition;
    let epoch = s.epoch;
    let code = pd.error_code;
    if code == 0 {
        if version >= 12 && pd.diverging_epoch.epoch >= 0 {
            tracing::info!(partition = %tp, epoch = pd.diverging_epoch.epoch, end = pd.diverging_epoch.end_offset, "leader reports a diverging epoch; truncating");
            shared.update(tp, epoch, |f| f.truncating = true);
            return;
        }
        let records = pd.records.unwrap_or_default();
        if !records.is_empty() {
            match p.append_as_follower(&records, epoch) {
                Ok(Some(_)) => {
                    if let Some(c) = &cfg.replication_bytes_in {
                        c.inc_by(records.len() as u64);
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(partition = %tp, offset, error = %e, "follower append failed; truncating and retrying");
                    shared.update(tp, epoch, |f| {
                        f.truncating = true;
                        f.delay(cfg.backoff_max);
                    });
                    return;
                }
            }
        }
        let jumped = s.fetch_from.is_some() && !records.is_empty();
        if jumped || pd.log_start_offset > p.log_start_offset().0 {
            let start = if jumped { offset } else { pd.log_start_offset };
            if let Err(e) = p.advance_log_start_as_follower(Offset(start)) {
                tracing::warn!(partition = %tp, error = %e, "cannot move the log start offset");
            }
        }
        p.set_follower_high_watermark(pd.high_watermark);
        shared.update(tp, epoch, |f| {
            if jumped {
                f.fetch_from = None;
            }
            f.ok();
        });
        return;
    }
    match ResponseError::try_from_code(code) {
        Some(ResponseError::OffsetOutOfRange) => {
            if pd.log_start_offset >= 0 && offset < pd.log_start_offset {
                tracing::info!(partition = %tp, offset, leader_log_start = pd.log_start_offset, "leader's log starts past ours; fetching from its start");
                shared.update(tp, epoch, |f| f.fetch_from = Some(pd.log_start_offset));
            } else if pd.high_watermark >= 0 && pd.high_watermark < p.log_end_offset().0 {
                tracing::info!(partition = %tp, offset, leader_hw = pd.high_watermark, "fetch offset past the leader's log end; truncating to its high watermark");
                if let Err(e) = p.truncate_as_follower(Offset(pd.high_watermark), epoch) {
                    tracing::warn!(partition = %tp, error = %e, "truncation failed");
                }
                shared.update(tp, epoch, |f| f.delay(cfg.backoff_max));
            } else {
                shared.update(tp, epoch, |f| {
                    f.truncating = true;
                    f.delay(cfg.backoff_max);
                });
            }
        }
        Some(ResponseError::FencedLeaderEpoch) => {
            // Our metadata is behind the leader's: truncate again once it catches up.
            shared.update(tp, epoch, |f| {
                f.truncating = true;
                f.delay(cfg.backoff_max);
            });
        }
        other => {
            tracing::debug!(partition = %tp, error = ?other, code, "fetch error; retrying later");
            shared.update(tp, epoch, |f| f.delay(cfg.backoff_max));
        }
    }
}

#[cfg(test)]
#[path = "fetcher_tests.rs"]
mod tests;
