//! The metadata image: what the cluster looks like (brokers, topics, partitions, configs). Every
//! reader takes an `Arc` snapshot, so a request sees one consistent picture.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{BrokerId, LeaderEpoch, TopicPartition};

/// One broker as the cluster knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: BrokerId,
    /// Advertised host for clients.
    pub host: String,
    /// Advertised port for clients.
    pub port: u16,
    /// Every client listener's advertised endpoint (`host`/`port` above are the
    /// inter-broker listener's); Metadata answers a client with the endpoints of the listener
    /// it connected to, as Kafka does. Empty for brokers registered before listeners were
    /// recorded: they have `host`/`port` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `max.broker.partitions` as configured on the broker at registration: the controller
    /// places no more replicas on it. `None` when unset (no limit, Kafka's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_partitions: Option<u32>,
}

/// One advertised listener of a broker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener's name (`SASL_SSL`, `INTERNAL`, ...).
    pub listener: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
}

impl BrokerInfo {
    /// Where a client on `listener` reaches this broker: that listener's endpoint, or the
    /// broker's only address when it recorded none (registered before listeners were).
    /// `None` when the broker does not serve that listener (Kafka leaves such brokers out).
    pub fn endpoint_for(&self, listener: &str) -> Option<(&str, u16)> {
        if self.endpoints.is_empty() {
            return Some((&self.host, self.port));
        }
        self.endpoints
            .iter()
            .find(|e| e.listener == listener)
            .map(|e| (e.host.as_str(), e.port))
    }
}

/// One partition's placement and leadership.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Replica set, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas.
    pub isr: Vec<BrokerId>,
    /// Current leader, or -1 when offline.
    pub leader: BrokerId,
    /// Bumped on each leader change.
    pub leader_epoch: LeaderEpoch,
    /// Bumped on any change to this partition's state.
    pub partition_epoch: i32,
}

/// One topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Partitions, index = partition number.
    pub partitions: Vec<PartitionMeta>,
    /// Topic-level config overrides (validated).
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    /// Internal topics (`__consumer_offsets`, `__transaction_state`) are flagged as such in Metadata.
    pub fn is_internal(&self) -> bool {
        self.name == "__consumer_offsets" || self.name == "__transaction_state"
    }
}

/// The whole cluster's metadata at one point in time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Cluster id (from `meta.properties`).
    pub cluster_id: String,
    /// The active controller's id.
    pub controller_id: BrokerId,
    /// Registered brokers.
    pub brokers: BTreeMap<BrokerId, BrokerInfo>,
    /// Topics by name, each shared between images until it changes: a committed entry copies
    /// the map of pointers and the one topic it changes (`Arc::make_mut`), never the others'
    /// partitions, so its cost follows the change rather than the cluster.
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    /// Next producer id to hand out (InitProducerId).
    pub next_producer_id: i64,
    /// Registered brokers that are fenced: not to be chosen as leader or ISR member (KRaft
    /// fences a broker from registration until its first heartbeat, and on session expiry).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub fenced_brokers: BTreeSet<BrokerId>,
    /// Each registered broker's epoch, from its latest registration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_epochs: BTreeMap<BrokerId, i64>,
    /// The metadata log index this image reflects; increases with every applied entry, so
    /// subscribers can apply images in order and skip stale ones.
    #[serde(default)]
    pub version: u64,
    /// Ongoing partition reassignments (KIP-455), by topic then partition. Kept beside the
    /// partitions rather than in [`PartitionMeta`] so that the many partition changes that do
    /// not concern reassignment (elections, ISR changes) carry it along untouched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reassignments: BTreeMap<String, BTreeMap<i32, Reassignment>>,
    /// Dynamic broker configs (IncrementalAlterConfigs on a BROKER resource): by resource
    /// name, `""` for the cluster-wide default and the broker id for one broker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Replicas whose log dir failed on their broker, by broker: not eligible to lead or to
    /// be in an ISR until that broker registers again (`MarkReplicasOffline`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub offline_replicas: BTreeMap<BrokerId, BTreeSet<TopicPartition>>,
    /// Brokers with no online log dir left: they stay registered (their `/readyz` says why)
    /// but get no new replicas until they register again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub brokers_without_storage: BTreeSet<BrokerId>,
    /// SCRAM credentials by user, then mechanism name (`SCRAM-SHA-256`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram_credentials: BTreeMap<String, BTreeMap<String, super::security::StoredScram>>,
    /// ACL bindings (CreateAcls), kept shared so the many images that do not change them
    /// (every partition change) copy a pointer, not the set.
    #[serde(default, skip_serializing_if = "acls_empty")]
    pub acls: std::sync::Arc<BTreeSet<super::acl::AclBinding>>,
    /// Client quotas (AlterClientQuotas), shared like the ACLs.
    #[serde(default, skip_serializing_if = "quotas_empty")]
    pub client_quotas: std::sync::Arc<super::quota::ClientQuotas>,
}

fn quotas_empty(q: &std::sync::Arc<super::quota::ClientQuotas>) -> bool {
    q.entities.is_empty()
}

fn acls_empty(a: &std::sync::Arc<BTreeSet<super::acl::AclBinding>>) -> bool {
    a.is_empty()
}

/// A partition reassignment in progress: the partition's replicas are the target followed by
/// the replicas being removed; `adding` are target replicas that were not replicas before.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reassignment {
    /// Replicas being added (in the target, not in the original set).
    pub adding: Vec<BrokerId>,
    /// Replicas being removed (in the original set, not in the target).
    pub removing: Vec<BrokerId>,
    /// The replica set before the reassignment, in its order (so a cancel restores the
    /// preferred leader too); empty in images written before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub original: Vec<BrokerId>,
}

impl Reassignment {
    /// The target replica set: `replicas` without the ones being removed.
    pub fn target(&self, replicas: &[BrokerId]) -> Vec<BrokerId> {
        replicas
            .iter()
            .filter(|r| !self.removing.contains(r))
            .copied()
            .collect()
    }

    /// The replica set before the reassignment: the recorded one (each of its members is
    /// still a replica: in the target or being removed), else, as Kafka computes it,
    /// `replicas` without the ones being added.
    pub fn original(&self, replicas: &[BrokerId]) -> Vec<BrokerId> {
        if !self.original.is_empty() && self.original.iter().all(|r| replicas.contains(r)) {
            return self.original.clone();
        }
        replicas
            .iter()
            .filter(|r| !self.adding.contains(r))
            .copied()
            .collect()
    }
}

impl MetadataImage {
    /// Replicas each broker hosts (reassignment targets included: they are replicas).
    pub fn replica_counts(&self) -> BTreeMap<BrokerId, u64> {
        let mut counts = BTreeMap::new();
        for p in self.topics.values().flat_map(|t| t.partitions.iter()) {
            for r in &p.replicas {
                *counts.entry(*r).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Whether `broker`'s replica of `topic`-`partition` may lead or be in the ISR: the broker
    /// is registered and unfenced, and the replica's log dir has not failed.
    pub fn replica_eligible(&self, broker: BrokerId, topic: &str, partition: i32) -> bool {
        self.brokers.contains_key(&broker)
            && !self.fenced_brokers.contains(&broker)
            && !self.offline_replicas.get(&broker).is_some_and(|set| {
                set.contains(&TopicPartition {
                    topic: topic.to_string(),
                    partition,
                })
            })
    }

    /// Brokers that may host new replicas and lead partitions (registered, not fenced, with a
    /// log dir online).
    pub fn live_brokers(&self) -> Vec<&BrokerInfo> {
        self.brokers
            .values()
            .filter(|b| {
                !self.fenced_brokers.contains(&b.id)
                    && !self.brokers_without_storage.contains(&b.id)
            })
            .collect()
    }

    /// Finds a topic by id.
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id).map(|t| &**t)
    }

    /// The reassignment in progress for a partition, if any.
    pub fn reassignment(&self, topic: &str, partition: i32) -> Option<&Reassignment> {
        self.reassignments.get(topic)?.get(&partition)
    }

    /// A dynamic broker config: the broker's own value, else the cluster-wide default.
    pub fn broker_config(&self, broker: BrokerId, key: &str) -> Option<&str> {
        let own = self.broker_configs.get(&broker.0.to_string());
        own.and_then(|c| c.get(key))
            .or_else(|| self.broker_configs.get("").and_then(|c| c.get(key)))
            .map(String::as_str)
    }

    /// One partition's state.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        let p = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(p)
    }
}
