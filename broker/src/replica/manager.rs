//! The replica manager owns every partition this node hosts. It reconciles the hosted set with
//! each new metadata image (opening and deleting logs, leader and follower roles, ISR and
//! `min.insync.replicas`, the replica fetchers that keep followers in step with their
//! leaders; new partitions go to the online log dir hosting fewest) and runs the retention and
//! compaction loop and the clean shutdown. Requests for a partition this node does not lead
//! get NOT_LEADER_OR_FOLLOWER (clients refresh their metadata), or UNKNOWN_TOPIC_OR_PARTITION
//! when no such partition exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::BrokerConfig;
use crate::log::PartitionLog;
use crate::metadata::{MetadataImage, PartitionMeta, TopicConfig, TopicConfigs, TopicMeta};
use crate::metrics::Metrics;
use crate::repeated::Repeated;
use crate::time::now_ms;

use super::log_dirs::LogDirHealth;
use crate::types::{BrokerId, TopicPartition};

/// Hosted partitions, by topic-partition.
pub struct ReplicaManager {
    node_id: BrokerId,
    config: Arc<BrokerConfig>,
    partitions: RwLock<HashMap<TopicPartition, Arc<super::Partition>>>,
    metrics: Arc<Metrics>,
    image: RwLock<Arc<MetadataImage>>,
    fetchers: super::fetcher::ReplicaFetchers,
    /// High watermarks from each log dir's `replication-offset-checkpoint`, for logs opened
    /// after a restart.
    restored_hws: super::checkpoint::Restored,
    /// This node's replication throttles (rates from the image's dynamic broker configs).
    throttles: Arc<super::throttle::Throttles>,
    /// Which log dirs are offline after storage errors (`log_dirs.rs`).
    health: Arc<LogDirHealth>,
    /// Partition logs that could not be opened, logged once per interval per dir and kind
    /// (not once per partition per metadata change).
    open_failures: Repeated,
    /// Replicas assigned to this node that no online log dir can take (reported as offline).
    unplaceable: std::sync::Mutex<std::collections::BTreeSet<TopicPartition>>,
    /// Each topic's effective config.
    topic_configs: Arc<TopicConfigs>,
    /// The open-file cache every hosted log opens its segment and index files through.
    files: Arc<crate::log::FileCache>,
    /// A replica could not be placed or opened: the next image is applied whole, so it is
    /// retried even if its topic did not change.
    retry_all: std::sync::atomic::AtomicBool,
}

impl ReplicaManager {
    /// An empty manager; partitions arrive through [`ReplicaManager::apply`].
    pub fn new(
        config: Arc<BrokerConfig>,
        metrics: Arc<Metrics>,
        topic_configs: Arc<TopicConfigs>,
        inter_broker: rill_client::security::ClientSecurity,
        files: Arc<crate::log::FileCache>,
    ) -> ReplicaManager {
        let fetcher_config = super::fetcher::FetcherConfig {
            replication_bytes_in: Some(metrics.replication_bytes_in.clone()),
            security: inter_broker,
            ..super::fetcher::FetcherConfig::from_broker(&config)
        };
        let throttles = Arc::new(super::throttle::Throttles::default());
        ReplicaManager {
            node_id: BrokerId(config.node_id),
            partitions: RwLock::new(HashMap::new()),
            image: RwLock::new(Arc::new(MetadataImage::default())),
            restored_hws: Default::default(),
            fetchers: super::fetcher::ReplicaFetchers::new(fetcher_config)
                .with_throttles(throttles.clone()),
            throttles,
            health: Arc::new(LogDirHealth::new(metrics.clone())),
            open_failures: Repeated::default(),
            unplaceable: Default::default(),
            topic_configs,
            metrics,
            config,
            files,
            retry_all: Default::default(),
        }
    }

    /// The open-file cache of the hosted logs.
    pub fn file_cache(&self) -> &Arc<crate::log::FileCache> {
        &self.files
    }

    /// Each topic's effective config (resolved once per change).
    pub fn topic_configs(&self) -> &Arc<TopicConfigs> {
        &self.topic_configs
    }

    /// The state of this node's log dirs.
    pub fn log_dir_health(&self) -> &Arc<LogDirHealth> {
        &self.health
    }

    /// True when every log dir of this node is offline: it can host nothing new.
    pub fn no_online_log_dir(&self) -> bool {
        self.config
            .log_dirs
            .iter()
            .all(|d| self.health.is_offline(d))
    }

    /// Takes every hosted partition in an offline log dir offline (idempotent) and returns
    /// them all, with the replicas this node was given but could not place for want of an
    /// online dir, for the controller to move their leadership away.
    pub fn take_offline_dirs_down(&self) -> Vec<TopicPartition> {
        let offline = self.health.offline_dirs();
        let image = self.image.read().map(|i| i.clone()).ok();
        let mut out: Vec<TopicPartition> = match self.unplaceable.lock() {
            Ok(mut u) => {
                // Forget replicas this node no longer has (deleted or moved away).
                if let Some(img) = &image {
                    u.retain(|tp| {
                        img.partition(&tp.topic, tp.partition)
                            .is_some_and(|p| p.replicas.contains(&self.node_id))
                    });
                }
                u.iter().cloned().collect()
            }
            Err(_) => Vec::new(),
        };
        for p in self.all() {
            if p.log_dir_root().is_some_and(|r| offline.contains_key(r)) {
                p.set_offline();
                out.push(p.tp.clone());
            }
        }
        if !out.is_empty() {
            // Followers in the dead dir stop fetching.
            if let (Some(image), Ok(map)) = (image, self.partitions.read()) {
                self.fetchers
                    .reconcile(&image, &online(&map), &self.topic_configs);
            }
        }
        out
    }

    /// This node's replication throttles.
    pub fn throttles(&self) -> &super::throttle::Throttles {
        &self.throttles
    }

    /// A hosted partition.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<super::Partition>> {
        let tp = TopicPartition::new(topic, partition);
        self.partitions.read().ok()?.get(&tp).cloned()
    }

    /// The partition if this node leads it: NOT_LEADER_OR_FOLLOWER when another node does (the
    /// client refreshes its metadata), UNKNOWN_TOPIC_OR_PARTITION when nobody hosts it.
    pub fn leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<super::Partition>, crate::error::KafkaError> {
        use crate::error::KafkaError;
        match self.get(topic, partition) {
            Some(p) if p.is_leader() => Ok(p),
            Some(_) => Err(KafkaError::NotLeaderOrFollower(format!(
                "This node is a follower of {topic}-{partition}."
            ))),
            None => {
                let known = self
                    .image
                    .read()
                    .map(|i| i.partition(topic, partition).is_some())
                    .unwrap_or(false);
                if known {
                    Err(KafkaError::NotLeaderOrFollower(format!(
                        "{topic}-{partition} is led by another node."
                    )))
                } else {
                    Err(KafkaError::UnknownTopicOrPartition(format!(
                        "This server does not host {topic}-{partition}."
                    )))
                }
            }
        }
    }

    /// Every hosted partition, sorted.
    pub fn all(&self) -> Vec<Arc<super::Partition>> {
        let mut v: Vec<_> = self
            .partitions
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.tp.cmp(&b.tp));
        v
    }

    /// Makes the hosted set match the image: opens logs for new replicas, deletes logs of removed
    /// topics, pushes config changes, leader epochs, leadership and ISR to each partition, and
    /// points the replica fetchers at the leaders of the partitions this node follows. Called
    /// by the controller's one image applier, in image order, never concurrently; the
    /// partition map is locked only to swap entries, never while logs are opened (recovery
    /// may read whole segments) or deleted, so produce and fetch go on meanwhile.
    ///
    /// Only what changed is visited: images share every topic an entry did not touch
    /// (`Arc<TopicMeta>`), so the topics that are not the same pointer as in the previous
    /// image, or are gone from it, are the delta. The first image, and the one after a
    /// replica could not be opened or placed (so failures are retried on every change), are
    /// applied whole.
    pub fn apply(&self, image: &Arc<MetadataImage>) {
        let started = std::time::Instant::now();
        let prev = match self.image.write() {
            // An older image than the one applied (delivered late) changes nothing.
            Ok(i) if image.version < i.version => return,
            Ok(mut i) => std::mem::replace(&mut *i, image.clone()),
            Err(_) => return,
        };
        self.throttles.apply(image, self.node_id);
        let whole = prev.version == 0 || self.retry_all.swap(false, Ordering::AcqRel);
        let scope = Scope::between(&prev, image, whole);
        let me = self.node_id;
        let mut wanted: HashMap<TopicPartition, Wanted<'_>> = HashMap::new();
        for t in scope
            .topics
            .iter()
            .filter_map(|(name, _)| image.topics.get(*name))
        {
            for (i, p) in t.partitions.iter().enumerate() {
                if p.replicas.contains(&me) {
                    wanted.insert(
                        TopicPartition::new(&t.name, i as i32),
                        Wanted { topic: t, meta: p },
                    );
                }
            }
        }
        // Removed (or re-created under the same name with a new id): out of the map first.
        let unwanted = |tp: &TopicPartition, p: &super::Partition| {
            wanted.get(tp).is_none_or(|w| w.topic.id != p.topic_id)
        };
        let stale: Vec<Arc<super::Partition>> = match self.partitions.write() {
            Ok(mut map) => {
                let gone: Vec<TopicPartition> = if whole {
                    map.iter()
                        .filter(|(tp, p)| unwanted(tp, p))
                        .map(|(tp, _)| tp.clone())
                        .collect()
                } else {
                    scope
                        .partitions()
                        .filter(|tp| map.get(tp).is_some_and(|p| unwanted(tp, p)))
                        .collect()
                };
                gone.iter().filter_map(|tp| map.remove(tp)).collect()
            }
            Err(_) => return,
        };
        let removed = stale.len();
        for p in stale {
            self.delete_log(p);
        }
        // Existing replicas take the new state; new ones are opened below, unlocked.
        let mut to_open = Vec::new();
        let mut per_dir: HashMap<PathBuf, usize> = HashMap::new();
        if let Ok(map) = self.partitions.read() {
            for (tp, w) in &wanted {
                let resolved = self.topic_configs.get(w.topic);
                match map.get(tp) {
                    Some(p) => self.update(p, w.meta, &resolved),
                    None => to_open.push((tp.clone(), resolved)),
                }
            }
            // Spreading new replicas over several log dirs needs each dir's count.
            if !to_open.is_empty() && self.config.log_dirs.len() > 1 {
                for p in map.values() {
                    if let Some(root) = p.log_dir_root() {
                        *per_dir.entry(root.to_path_buf()).or_insert(0) += 1;
                    }
                }
            }
        }
        let mut placed = Vec::with_capacity(to_open.len());
        for (tp, resolved) in to_open {
            let Some(w) = wanted.get(&tp) else { continue };
            match self.place(&tp, &mut per_dir) {
                Some(dir) => placed.push(Placed {
                    tp,
                    want: w,
                    resolved,
                    dir,
                }),
                None => self.retry_all.store(true, Ordering::Release),
            }
        }
        let reconciled = started.elapsed();
        let opened = self.open_all(&placed);
        if opened.len() < placed.len() {
            self.retry_all.store(true, Ordering::Release);
        }
        let open_time = started.elapsed() - reconciled;
        let Ok(mut map) = self.partitions.write() else {
            return;
        };
        map.extend(opened);
        self.metrics.partition_count.set(map.len() as i64);
        // Replica fetchers follow leaders: they need a look only when brokers changed or a
        // changed topic has (or had) this node as a follower.
        if whole || removed > 0 || prev.brokers != image.brokers || scope.follows(&prev, image, me)
        {
            let online = online(&map);
            drop(map);
            self.fetchers.reconcile(image, &online, &self.topic_configs);
        } else {
            drop(map);
        }
        if removed > 0 || whole {
            self.topic_configs.retain(image);
        }
        tracing::debug!(
            version = image.version,
            whole,
            topics = scope.topics.len(),
            opened = placed.len(),
            reconcile_us = reconciled.as_micros() as u64,
            open_us = open_time.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "image applied to the hosted replicas"
        );
    }

    /// Pushes a replica's new state from the image.
    fn update(&self, p: &super::Partition, meta: &PartitionMeta, resolved: &TopicConfig) {
        p.set_config(resolved.log.clone());
        let (led, epoch, isr) = (p.is_leader(), p.leader_epoch(), p.isr());
        p.apply_meta(self.node_id, meta, resolved.min_insync_replicas);
        if led && meta.leader == self.node_id && meta.leader_epoch == epoch {
            self.count_isr_change(&isr, &meta.isr);
        }
        // A leader from outside the ISR: an unclean election.
        if !led && meta.leader == self.node_id && !isr.contains(&self.node_id) {
            self.metrics.unclean_elections.inc();
        }
    }

    /// Chooses a new replica's log dir: where it already is, else the online dir hosting
    /// fewest (`per_dir` counts, updated). `None` (reported as unplaceable) when no log dir is
    /// online.
    fn place(&self, tp: &TopicPartition, per_dir: &mut HashMap<PathBuf, usize>) -> Option<PathBuf> {
        let Some(dir) = self.dir_for(tp, per_dir) else {
            if let Some(left_out) = self.open_failures.check("no online log dir") {
                tracing::error!(partition = %tp, left_out, "cannot host partition: its log dir is offline");
            }
            let new = self
                .unplaceable
                .lock()
                .map(|mut u| u.insert(tp.clone()))
                .unwrap_or(false);
            if new {
                self.health.failed.notify_one();
            }
            return None;
        };
        if let Some(root) = dir.parent() {
            *per_dir.entry(root.to_path_buf()).or_insert(0) += 1;
        }
        Some(dir)
    }

    /// Opens the placed replicas' logs, on up to `num.recovery.threads.per.data.dir` threads
    /// per log dir: creating a log waits on fsyncs and recovering one reads its segments, so
    /// a metadata change that brings thousands of replicas (or the start) takes a fraction of
    /// the time it would one by one. The threads take partitions from a shared counter; if
    /// none can be spawned, the calling thread does all the work.
    fn open_all(&self, placed: &[Placed<'_>]) -> Vec<(TopicPartition, Arc<super::Partition>)> {
        let threads = (self.config.recovery_threads_per_data_dir
            * self.config.log_dirs.len().max(1))
        .min(MAX_OPEN_THREADS)
        .min(placed.len().div_ceil(MIN_OPENS_PER_THREAD));
        let next = AtomicUsize::new(0);
        let work = || {
            let mut out = Vec::new();
            while let Some(p) = placed.get(next.fetch_add(1, Ordering::Relaxed)) {
                if let Some(opened) = self.open(p) {
                    out.push((p.tp.clone(), Arc::new(opened)));
                }
            }
            out
        };
        if threads <= 1 {
            return work();
        }
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..threads)
                .filter_map(|i| {
                    std::thread::Builder::new()
                        .name(format!("log-open-{i}"))
                        .spawn_scoped(scope, work)
                        .map_err(|e| tracing::warn!(error = %e, "cannot start a thread to open logs; fewer open them"))
                        .ok()
                })
                .collect();
            let mut opened = work();
            for w in workers {
                match w.join() {
                    Ok(mut o) => opened.append(&mut o),
                    // Its partitions stay out of the map; the next metadata change retries them.
                    Err(_) => tracing::error!("a thread opening partition logs panicked"),
                }
            }
            opened
        })
    }

    /// Opens (creating or recovering) a placed replica's log. Failures are counted and logged
    /// once per interval per dir and cause.
    fn open(&self, p: &Placed<'_>) -> Option<super::Partition> {
        let (tp, w, resolved, dir) = (&p.tp, p.want, &p.resolved, &p.dir);
        let root = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        match PartitionLog::open(
            dir,
            &w.topic.id.to_string(),
            resolved.log.clone(),
            now_ms(),
            &self.files,
        ) {
            Ok(log) => {
                tracing::debug!(partition = %tp, dir = %dir.display(), leo = log.log_end_offset().0, "partition log opened");
                let p = super::Partition::new(tp.clone(), w.topic.id, log, w.meta.leader_epoch)
                    .with_health(self.health.clone(), root.clone());
                if let Some(hw) = self.restored_hws.take(&root, tp) {
                    p.restore_high_watermark(hw);
                }
                p.apply_meta(self.node_id, w.meta, resolved.min_insync_replicas);
                Some(p)
            }
            Err(e) => {
                // A full disk or a file limit fails every partition alike: one line per
                // interval per dir and cause, the count of the others beside it.
                if let crate::log::LogError::Io(io) = &e {
                    self.health.record_error(&root, io, now_ms());
                }
                let kind = match &e {
                    crate::log::LogError::Io(io) => super::log_dirs::classify(io).0,
                    _ => "other",
                };
                let key = format!("{}\u{0}{kind}", root.display());
                if let Some(left_out) = self.open_failures.check(&key) {
                    tracing::error!(partition = %tp, dir = %root.display(), error = %e, left_out, "cannot open partition log (later failures of this kind in this dir are counted, not logged, for a while)");
                }
                None
            }
        }
    }

    /// Deletes a removed replica's log directory (the partition is out of the map already).
    fn delete_log(&self, p: Arc<super::Partition>) {
        let tp = p.tp.clone();
        let dir = p.with_log(|l| Ok(l.dir().to_path_buf())).ok();
        drop(p);
        if let Some(dir) = dir {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(partition = %tp, error = %e, "could not delete partition directory");
            } else {
                tracing::info!(partition = %tp, "deleted partition log");
            }
        }
    }

    /// Counts a committed ISR change of a partition this node kept leading (Kafka's
    /// IsrShrinksPerSec / IsrExpandsPerSec, one per change).
    fn count_isr_change(&self, before: &[BrokerId], after: &[BrokerId]) {
        if before.iter().any(|b| !after.contains(b)) {
            self.metrics.isr_shrinks.inc();
        }
        if after.iter().any(|b| !before.contains(b)) {
            self.metrics.isr_expands.inc();
        }
    }

    /// Stops every replica fetcher (shutdown).
    pub fn stop_fetchers(&self) {
        self.fetchers.stop_all();
    }

    /// Where a partition's log lives: where it already is, else the online log dir hosting
    /// fewest (by `per_dir`); `None` when its dir (or every dir) is offline.
    fn dir_for(&self, tp: &TopicPartition, per_dir: &HashMap<PathBuf, usize>) -> Option<PathBuf> {
        let name = tp.dir_name();
        if let Some(d) = self.config.log_dirs.iter().find(|d| d.join(&name).is_dir()) {
            return (!self.health.is_offline(d)).then(|| d.join(name));
        }
        self.config
            .log_dirs
            .iter()
            .filter(|d| !self.health.is_offline(d))
            .min_by_key(|d| per_dir.get(*d).copied().unwrap_or(0))
            .map(|best| best.join(name))
    }

    /// Every `log.retention.check.interval.ms`: deletes segments past retention in every
    /// partition (when its `cleanup.policy` contains `delete`) and compacts the logs whose policy
    /// contains `compact`. Runs on a blocking thread: a compaction pass reads and rewrites
    /// segments.
    pub async fn retention_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(
            self.config.retention_check_interval_ms,
        ));
        tick.tick().await;
        loop {
            tick.tick().await;
            let partitions: Vec<_> = self.all().into_iter().filter(|p| !p.is_offline()).collect();
            let pass = tokio::task::spawn_blocking(move || {
                for p in partitions {
                    match p.with_log(|l| l.enforce_retention(now_ms())) {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(partition = %p.tp, segments = n, "retention deleted segments")
                        }
                        Err(e) => tracing::warn!(partition = %p.tp, error = %e, "retention failed"),
                    }
                    if let Err(e) = p.with_log(|l| l.compact(now_ms())) {
                        tracing::warn!(partition = %p.tp, error = %e, "compaction failed");
                    }
                }
            });
            if let Err(e) = pass.await {
                tracing::error!(error = %e, "retention pass panicked");
            }
        }
    }

    /// Flushes and cleanly closes every log (the clean-shutdown marker skips recovery next start).
    pub fn shutdown(&self) {
        self.stop_fetchers();
        // The final high watermarks, so the next start serves consumers at once.
        let online: Vec<PathBuf> = self
            .config
            .log_dirs
            .iter()
            .filter(|d| !self.health.is_offline(d))
            .cloned()
            .collect();
        super::checkpoint::write_all(&online, &super::checkpoint::snapshot(self));
        for p in self.all() {
            if let Err(e) = p.close() {
                tracing::warn!(partition = %p.tp, error = %e, "unclean close");
            }
        }
    }
}

/// A replica the image gives this node.
struct Wanted<'a> {
    topic: &'a TopicMeta,
    meta: &'a PartitionMeta,
}

/// The topics an image change concerns, each with the most partitions it had in either image.
struct Scope<'a> {
    topics: Vec<(&'a str, usize)>,
}

impl<'a> Scope<'a> {
    /// Every topic of both images when `whole`; else the topics that are not the same shared
    /// entry in both (created, changed or deleted).
    fn between(prev: &'a MetadataImage, next: &'a MetadataImage, whole: bool) -> Scope<'a> {
        let count = |img: &MetadataImage, name: &str| {
            img.topics.get(name).map_or(0, |t| t.partitions.len())
        };
        let mut topics: Vec<(&'a str, usize)> = next
            .topics
            .iter()
            .filter(|(name, t)| whole || prev.topics.get(*name).is_none_or(|p| !Arc::ptr_eq(p, t)))
            .map(|(name, t)| (name.as_str(), t.partitions.len().max(count(prev, name))))
            .collect();
        topics.extend(
            prev.topics
                .iter()
                .filter(|(name, _)| !next.topics.contains_key(*name))
                .map(|(name, t)| (name.as_str(), t.partitions.len())),
        );
        Scope { topics }
    }

    /// Every partition of the topics in scope, in either image.
    fn partitions(&self) -> impl Iterator<Item = TopicPartition> + '_ {
        self.topics
            .iter()
            .flat_map(|&(name, n)| (0..n).map(move |i| TopicPartition::new(name, i as i32)))
    }

    /// Whether `me` follows (is a replica but not the leader of) a partition of a topic in
    /// scope, in either image.
    fn follows(&self, prev: &MetadataImage, next: &MetadataImage, me: BrokerId) -> bool {
        self.topics.iter().any(|(name, _)| {
            [prev, next].iter().any(|img| {
                img.topics.get(*name).is_some_and(|t| {
                    t.partitions
                        .iter()
                        .any(|p| p.leader != me && p.replicas.contains(&me))
                })
            })
        })
    }
}

/// A new replica with the log dir chosen for it, waiting to be opened.
struct Placed<'a> {
    tp: TopicPartition,
    want: &'a Wanted<'a>,
    resolved: Arc<TopicConfig>,
    dir: PathBuf,
}

/// The most threads that open logs at once, whatever `num.recovery.threads.per.data.dir` says.
const MAX_OPEN_THREADS: usize = 64;
/// Fewer new replicas than this per thread are not worth a thread.
const MIN_OPENS_PER_THREAD: usize = 16;

/// The partitions whose log dir is online: the only ones replica fetchers serve.
fn online(
    map: &HashMap<TopicPartition, Arc<super::Partition>>,
) -> HashMap<TopicPartition, Arc<super::Partition>> {
    map.iter()
        .filter(|(_, p)| !p.is_offline())
        .map(|(tp, p)| (tp.clone(), p.clone()))
        .collect()
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
