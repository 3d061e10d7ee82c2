//! The replica manager owns every partition this node hosts. It reconciles the hosted set with
//! each new metadata image (opening and deleting logs, leader and follower roles, ISR and
//! `min.insync.replicas`, the replica fetchers that keep followers in step with their
//! leaders; new partitions go to the online log dir hosting fewest) and runs the retention and
//! compaction loop and the clean shutdown. Requests for a partition this node does not lead
//! get NOT_LEADER_OR_FOLLOWER (clients refresh their metadata), or UNKNOWN_TOPIC_OR_PARTITION
//! when no such partition exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
    pub fn apply(&self, image: &Arc<MetadataImage>) {
        if let Ok(mut i) = self.image.write() {
            *i = image.clone();
        }
        self.throttles.apply(image, self.node_id);
        let mut wanted: HashMap<TopicPartition, Wanted<'_>> = HashMap::new();
        for t in image.topics.values() {
            for (i, p) in t.partitions.iter().enumerate() {
                if p.replicas.contains(&self.node_id) {
                    wanted.insert(
                        TopicPartition::new(&t.name, i as i32),
                        Wanted { topic: t, meta: p },
                    );
                }
            }
        }
        // Removed (or re-created under the same name with a new id): out of the map first.
        let stale: Vec<Arc<super::Partition>> = match self.partitions.write() {
            Ok(mut map) => {
                let gone: Vec<TopicPartition> = map
                    .iter()
                    .filter(|(tp, p)| wanted.get(*tp).is_none_or(|w| w.topic.id != p.topic_id))
                    .map(|(tp, _)| tp.clone())
                    .collect();
                gone.iter().filter_map(|tp| map.remove(tp)).collect()
            }
            Err(_) => return,
        };
        for p in stale {
            self.delete_log(p);
        }
        // Existing replicas take the new state; new ones are opened below, unlocked.
        let mut to_open = Vec::new();
        let mut per_dir: HashMap<PathBuf, usize> = HashMap::new();
        if let Ok(map) = self.partitions.read() {
            for p in map.values() {
                if let Some(root) = p.log_dir_root() {
                    *per_dir.entry(root.to_path_buf()).or_insert(0) += 1;
                }
            }
            for (tp, w) in &wanted {
                let resolved = self.topic_configs.get(w.topic);
                match map.get(tp) {
                    Some(p) => self.update(p, w.meta, &resolved),
                    None => to_open.push((tp.clone(), resolved)),
                }
            }
        }
        let mut opened = Vec::with_capacity(to_open.len());
        for (tp, resolved) in to_open {
            let Some(w) = wanted.get(&tp) else { continue };
            if let Some(p) = self.open(&tp, w, &resolved, &mut per_dir) {
                opened.push((tp, Arc::new(p)));
            }
        }
        let Ok(mut map) = self.partitions.write() else {
            return;
        };
        map.extend(opened);
        self.metrics.partition_count.set(map.len() as i64);
        self.fetchers
            .reconcile(image, &online(&map), &self.topic_configs);
        self.topic_configs.retain(image);
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

    /// Opens (creating or recovering) a new replica's log in its log dir: where it already
    /// is, else the online dir hosting fewest (`per_dir` counts, updated). Failures are
    /// counted and logged once per interval per dir and cause.
    fn open(
        &self,
        tp: &TopicPartition,
        w: &Wanted<'_>,
        resolved: &TopicConfig,
        per_dir: &mut HashMap<PathBuf, usize>,
    ) -> Option<super::Partition> {
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
        let root = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        match PartitionLog::open(
            &dir,
            &w.topic.id.to_string(),
            resolved.log.clone(),
            now_ms(),
            &self.files,
        ) {
            Ok(log) => {
                tracing::info!(partition = %tp, dir = %dir.display(), leo = log.log_end_offset().0, "partition log opened");
                *per_dir.entry(root.clone()).or_insert(0) += 1;
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

/// The partitions whose log dir is online: the only ones replica fetchers serve.
fn online(
    map: &HashMap<TopicPartition, Arc<super::Partition>>,
) -> HashMap<TopicPartition, Arc<super::Partition>> {
    map.iter()
        .filter(|(_, p)| !p.is_offline())
        .map(|(tp, p)| (tp.clone(), p.clone()))
        .collect()
}
