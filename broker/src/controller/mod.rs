//! The controller: the one writer of cluster metadata. Today it is the local node (a cluster of
//! one, persisting the image to `__cluster_metadata/metadata.json` in the first log dir); the
//! replicated-quorum issue puts the same operations behind a Raft log. Every change goes through
//! here, is persisted, then published to readers and to the replica manager.

pub mod image;
pub mod placement;
pub mod raft;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use uuid::Uuid;

use crate::config::defs::{self, InvalidConfig};
use crate::error::KafkaError;
use crate::types::{BrokerId, LeaderEpoch};
pub use image::{BrokerInfo, MetadataImage, PartitionMeta, TopicMeta};

/// Longest topic name Kafka allows.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count (already defaulted).
    pub partitions: i32,
    /// Replication factor (already defaulted).
    pub replication_factor: i16,
    /// Explicit replica assignment, if the client gave one.
    pub assignment: Option<Vec<Vec<BrokerId>>>,
    /// Config overrides as given.
    pub configs: BTreeMap<String, String>,
}

/// Called after each committed change so the node can act on it (open or delete logs, ...).
pub type Listener = Box<dyn Fn(&Arc<MetadataImage>) + Send + Sync>;

/// The metadata writer and the published image.
pub struct Controller {
    path: PathBuf,
    image: RwLock<Arc<MetadataImage>>,
    write: Mutex<()>,
    listeners: Mutex<Vec<Listener>>,
}

impl Controller {
    /// Loads the persisted image from `dir` (or starts an empty one) and registers this broker.
    pub fn open(dir: &Path, cluster_id: &str, me: BrokerInfo) -> std::io::Result<Controller> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("metadata.json");
        let mut image: MetadataImage = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetadataImage {
                next_producer_id: 1000,
                ..Default::default()
            },
            Err(e) => return Err(e),
        };
        image.cluster_id = cluster_id.to_string();
        image.controller_id = me.id;
        image.brokers.insert(me.id, me);
        let c = Controller {
            path,
            image: RwLock::new(Arc::new(image.clone())),
            write: Mutex::new(()),
            listeners: Mutex::new(Vec::new()),
        };
        c.persist(&image)?;
        Ok(c)
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Registers a callback run after every committed change (and once now).
    pub fn subscribe(&self, l: Listener) {
        l(&self.image());
        if let Ok(mut ls) = self.listeners.lock() {
            ls.push(l);
        }
    }

    /// Creates a topic; with `validate_only` checks everything and changes nothing.
    pub fn create_topic(&self, t: NewTopic, validate_only: bool) -> Result<TopicMeta, KafkaError> {
        validate_topic_name(&t.name)?;
        let configs = defs::validate_topic_configs(&t.configs)
            .map_err(|InvalidConfig(m)| KafkaError::InvalidConfig(m))?;
        self.mutate(validate_only, |img| {
            if img.topics.contains_key(&t.name) {
                return Err(KafkaError::TopicAlreadyExists(format!("Topic '{}' already exists.", t.name)));
            }
            if let Some(clash) = img.topics.keys().find(|n| n.replace('.', "_") == t.name.replace('.', "_")) {
                return Err(KafkaError::InvalidTopic(format!("Topic '{}' collides with existing topic: {clash} ('.' and '_' collide in metric names)", t.name)));
            }
            let brokers: Vec<&BrokerInfo> = img.brokers.values().collect();
            let assignment = match &t.assignment {
                Some(a) => placement::check_assignment(a, &brokers)?,
                None => placement::assign(t.partitions, t.replication_factor, &brokers, 0)?,
            };
            let topic = TopicMeta { name: t.name.clone(), id: Uuid::new_v4(), partitions: assignment.into_iter().map(new_partition).collect(), configs: configs.clone() };
            img.topics.insert(t.name.clone(), topic.clone());
            Ok(topic)
        })
    }

    /// Deletes a topic by name.
    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, KafkaError> {
        self.mutate(false, |img| {
            img.topics.remove(name).ok_or_else(|| {
                KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
            })
        })
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<BrokerId>>>,
        validate_only: bool,
    ) -> Result<(), KafkaError> {
        self.mutate(validate_only, |img| {
            let brokers: Vec<BrokerInfo> = img.brokers.values().cloned().collect();
            let topic = img.topics.get_mut(name).ok_or_else(|| KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist.")))?;
            let current = topic.partitions.len() as i32;
            if count <= current {
                return Err(KafkaError::InvalidPartitions(format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}.")));
            }
            let rf = topic.partitions.first().map(|p| p.replicas.len()).unwrap_or(1) as i16;
            let refs: Vec<&BrokerInfo> = brokers.iter().collect();
            let added = match assignment {
                Some(a) => {
                    if a.len() as i32 != count - current {
                        return Err(KafkaError::InvalidReplicaAssignment(format!("Increasing the number of partitions by {} but {} assignments provided.", count - current, a.len())));
                    }
                    placement::check_assignment(&a, &refs)?
                }
                None => placement::assign(count - current, rf, &refs, current as usize)?,
            };
            topic.partitions.extend(added.into_iter().map(new_partition));
            Ok(())
        })
    }

    /// Replaces a topic's config overrides with `configs` (already validated by the caller).
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), KafkaError> {
        let configs = defs::validate_topic_configs(&configs)
            .map_err(|InvalidConfig(m)| KafkaError::InvalidConfig(m))?;
        self.mutate(validate_only, |img| {
            let topic = img.topics.get_mut(name).ok_or_else(|| {
                KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
            })?;
            topic.configs = configs;
            Ok(())
        })
    }

    /// Hands out a fresh producer id (InitProducerId without a transactional id).
    pub fn allocate_producer_id(&self) -> Result<i64, KafkaError> {
        self.mutate(false, |img| {
            let id = img.next_producer_id;
            img.next_producer_id += 1;
            Ok(id)
        })
    }

    /// Applies `f` to a copy of the image; on success persists it, publishes it and tells the
    /// listeners. One writer at a time, so changes are linearised.
    fn mutate<T>(
        &self,
        dry_run: bool,
        f: impl FnOnce(&mut MetadataImage) -> Result<T, KafkaError>,
    ) -> Result<T, KafkaError> {
        let _guard = self
            .write
            .lock()
            .map_err(|_| KafkaError::Unknown("controller lock poisoned".into()))?;
        let mut next = (*self.image()).clone();
        let out = f(&mut next)?;
        if dry_run {
            return Ok(out);
        }
        self.persist(&next)
            .map_err(|e| KafkaError::Unknown(format!("cannot persist metadata: {e}")))?;
        let next = Arc::new(next);
        match self.image.write() {
            Ok(mut g) => *g = next.clone(),
            Err(p) => *p.into_inner() = next.clone(),
        }
        if let Ok(ls) = self.listeners.lock() {
            for l in ls.iter() {
                l(&next);
            }
        }
        Ok(out)
    }

    /// Writes the image atomically: a torn write must never lose the topic list.
    fn persist(&self, image: &MetadataImage) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(image).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

fn new_partition(replicas: Vec<BrokerId>) -> PartitionMeta {
    let leader = replicas.first().copied().unwrap_or(BrokerId(-1));
    PartitionMeta {
        isr: replicas.clone(),
        replicas,
        leader,
        leader_epoch: LeaderEpoch(0),
        partition_epoch: 0,
    }
}

/// Kafka's topic-name rules: 1-249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), KafkaError> {
    let bad = |why: String| Err(KafkaError::InvalidTopic(why));
    if name.is_empty() {
        return bad("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return bad("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return bad(format!("Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return bad(format!("Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> BrokerInfo {
        BrokerInfo {
            id: BrokerId(1),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
        }
    }

    fn topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            assignment: None,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_persist_reload() {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), "cid", me()).unwrap();
        c.create_topic(topic("a", 3), false).unwrap();
        assert!(matches!(
            c.create_topic(topic("a", 1), false),
            Err(KafkaError::TopicAlreadyExists(_))
        ));
        c.create_topic(topic("b", 1), true).unwrap();
        assert!(
            !c.image().topics.contains_key("b"),
            "validate_only must not create"
        );
        c.create_partitions("a", 5, None, false).unwrap();
        assert!(matches!(
            c.create_partitions("a", 5, None, false),
            Err(KafkaError::InvalidPartitions(_))
        ));
        drop(c);
        let c = Controller::open(dir.path(), "cid", me()).unwrap();
        assert_eq!(c.image().topics["a"].partitions.len(), 5);
    }

    #[test]
    fn names_and_configs_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = Controller::open(dir.path(), "cid", me()).unwrap();
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(
                matches!(
                    c.create_topic(topic(bad, 1), false),
                    Err(KafkaError::InvalidTopic(_))
                ),
                "{bad:?}"
            );
        }
        let mut t = topic("c", 1);
        t.configs.insert("retention.ms".into(), "abc".into());
        assert!(matches!(
            c.create_topic(t, false),
            Err(KafkaError::InvalidConfig(_))
        ));
        c.create_topic(topic("x.y", 1), false).unwrap();
        assert!(matches!(
            c.create_topic(topic("x_y", 1), false),
            Err(KafkaError::InvalidTopic(_))
        ));
    }
}
