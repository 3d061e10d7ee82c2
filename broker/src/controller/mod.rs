//! The controller: every metadata change is validated here against the current image (names,
//! configs, placement and each broker's `max.broker.partitions`, topic ids), proposed to the
//! Raft metadata quorum (`raft/`, openraft) as a `MetadataCommand` and, once committed,
//! published to the subscribers (replica manager, group coordinator) in log order: each image
//! carries its log index as `version`, so a stale image never undoes a newer one.
//!
//! One applier task hands committed images to the subscribers on a blocking thread; a
//! proposer waits until the applier has reached its entry's log index (forwarded proposals
//! carry it back), so a topic created through a node is usable there at once, and no request
//! task opens, recovers or deletes logs itself. A starting node returns from
//! [`Controller::start`] only once its own image holds its registration, so it never acts on
//! metadata older than that (an image still naming it leader of partitions that moved while
//! it was down). Partition leaders change the ISR through [`Controller::alter_partition_isr`]
//! (KIP-497's AlterPartition: a compare-and-set on the partition epoch).

pub mod election;
pub mod isr_batch;
pub mod liveness;
pub mod placement;
pub mod raft;
pub mod reassign;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use uuid::Uuid;

use crate::config::defs::{self, InvalidConfig};
use crate::config::BrokerConfig;
use crate::controller::raft::command::{CommandError, CommandResult, MetadataCommand};
use crate::controller::raft::{MetadataQuorum, QuorumConfig, QuorumError};
use crate::error::KafkaError;
use crate::metadata::{BrokerInfo, MetadataImage, PartitionMeta, TopicMeta};
use crate::types::{BrokerId, LeaderEpoch};

/// Longest topic name Kafka allows.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A topic to create, as the controller takes it: a client's `rill_client::NewTopic`
/// (CreateTopics, or auto-creation) after validation, with the defaults applied and the
/// replica assignment, if given, resolved to broker ids.
#[derive(Debug, Clone)]
pub struct TopicCreation {
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

/// Called with each newer committed image so the node can act on it (open or delete logs, ...).
pub type Listener = Box<dyn Fn(&Arc<MetadataImage>) + Send + Sync>;

/// The longest a proposer waits for this node's applier after its change committed (the
/// change stands either way; only the local listeners may not have seen it yet).
const MAX_APPLY_WAIT: Duration = Duration::from_secs(10);

/// Timings for a quorum of one: no peer can disagree, so elect at once.
const SOLO_HEARTBEAT: Duration = Duration::from_millis(50);
const SOLO_ELECTION: (Duration, Duration) =
    (Duration::from_millis(150), Duration::from_millis(300));

/// The metadata front end: validates changes against the current image, proposes them to the
/// Raft quorum (`raft/`), and hands every newer committed image to its subscribers in order.
/// A single node is a quorum of one: the same path.
pub struct Controller {
    quorum: MetadataQuorum,
    listeners: Mutex<Vec<Listener>>,
    /// Version of the last image given to listeners: images are applied in log order only, so
    /// a stale image can never undo a newer one (e.g. delete a just-created partition).
    published: Mutex<u64>,
    /// The same version, for proposers waiting until their change is applied on this node.
    applied: watch::Sender<u64>,
    /// `broker.session.timeout.ms`: how long the controller waits before fencing a silent
    /// broker, hence how long this node may be out of touch before it must assume so.
    session_timeout: Duration,
    /// Partition leaders' ISR changes waiting to be proposed together (`isr_batch.rs`).
    isr_queue: Arc<isr_batch::IsrQueue>,
}

impl Controller {
    /// Starts (or rejoins) the metadata quorum on `listener`, then registers this broker.
    pub async fn start(
        config: &BrokerConfig,
        dir: &Path,
        cluster_id: &str,
        me: BrokerInfo,
        listener: std::net::TcpListener,
    ) -> anyhow::Result<Arc<Controller>> {
        let addr = listener.local_addr()?;
        let voters: BTreeMap<u64, String> = if config.quorum_voters.is_empty() {
            BTreeMap::from([(me.id.0 as u64, addr.to_string())])
        } else {
            config
                .quorum_voters
                .iter()
                .map(|(id, a)| (*id as u64, a.clone()))
                .collect()
        };
        let mut qc = QuorumConfig::new(me.id.0 as u64, voters.clone(), addr, dir.join("raft"));
        qc.cluster_id = Some(cluster_id.to_string());
        if voters.len() == 1 {
            qc.heartbeat_interval = SOLO_HEARTBEAT;
            (qc.election_timeout_min, qc.election_timeout_max) = SOLO_ELECTION;
        } else {
            // Randomized between the timeout and twice it (openraft), heartbeats at a fifth
            // of it so a few lost ones do not start an election.
            let election = Duration::from_millis(config.replication.election_timeout_ms);
            qc.election_timeout_min = election;
            qc.election_timeout_max = election * 2;
            qc.heartbeat_interval = (election / 5).max(Duration::from_millis(10));
        }
        // A CONTROLLER listener mapped to SSL: mutual TLS between the controllers.
        if let Some(ssl) = config
            .security
            .listener(&config.controller_listener.name)
            .and_then(|l| l.ssl.as_ref())
        {
            let name = &config.controller_listener.name;
            qc.tls = Some(crate::controller::raft::QuorumTls {
                server: Arc::new(
                    crate::security::tls::TlsServer::new(name, ssl)
                        .map_err(|e| anyhow::anyhow!("listener {name}: {e}"))?,
                ),
                client: Arc::new(
                    crate::security::tls::client_config(ssl)
                        .map_err(|e| anyhow::anyhow!("listener {name}: {e}"))?,
                ),
            });
        }
        let quorum = MetadataQuorum::start_on(qc, listener).await?;
        let leader = quorum.wait_for_leader(Duration::from_secs(120)).await?;
        tracing::info!(
            node = me.id.0,
            leader,
            voters = voters.len(),
            "metadata quorum has a leader"
        );
        let c = Arc::new(Controller {
            quorum,
            listeners: Mutex::new(Vec::new()),
            published: Mutex::new(0),
            applied: watch::channel(0).0,
            session_timeout: Duration::from_millis(config.replication.session_timeout_ms),
            isr_queue: Default::default(),
        });
        Controller::spawn_applier(&c);
        isr_batch::spawn_drainer(&c);
        if c.image().cluster_id.is_empty() {
            c.propose(MetadataCommand::SetClusterId(cluster_id.to_string()))
                .await?;
        } else if c.image().cluster_id != cluster_id {
            anyhow::bail!(
                "this node's log dirs belong to cluster {cluster_id}, but the quorum is cluster {}",
                c.image().cluster_id
            );
        }
        let id = me.id;
        let epoch = crate::time::now_ms();
        c.propose(MetadataCommand::RegisterBroker { info: me, epoch })
            .await?;
        c.propose(MetadataCommand::UnfenceBroker { id }).await?;
        // A proposal forwarded to the leader returns once the leader applied it; wait until
        // this node's image has it too, so the replica manager starts from the metadata as
        // of this registration (never from an older image that may still name this node the
        // leader of partitions that moved while it was away).
        let mut rx = c.quorum.subscribe();
        let caught_up = |img: &MetadataImage| img.broker_epochs.get(&id) == Some(&epoch);
        let wait = async {
            loop {
                if caught_up(&rx.borrow_and_update()) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(true) => {}
            _ => anyhow::bail!("this node's metadata did not catch up with its own registration"),
        }
        Ok(c)
    }

    /// The one image applier: hands every newer committed image to the listeners, in log
    /// order, on a blocking thread (listeners open and delete logs), then marks its version
    /// applied. Proposers wait for that mark; no request task runs a listener itself.
    fn spawn_applier(c: &Arc<Controller>) {
        let mut rx = c.quorum.subscribe();
        let weak = Arc::downgrade(c);
        tokio::spawn(async move {
            loop {
                let img = rx.borrow_and_update().clone();
                let Some(c) = weak.upgrade() else { break };
                let _ = tokio::task::spawn_blocking(move || c.publish(&img)).await;
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// Waits (at most [`MAX_APPLY_WAIT`]) until the applier has handed image `version` to
    /// every listener, so a topic created through this node is usable on it at once.
    async fn wait_applied(&self, version: u64) {
        let mut rx = self.applied.subscribe();
        if tokio::time::timeout(MAX_APPLY_WAIT, rx.wait_for(|v| *v >= version))
            .await
            .is_err()
        {
            tracing::warn!(
                version,
                "the image applier is slow; answering before it caught up"
            );
        }
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// Resolves if the metadata quorum on this node fails for good (its storage failed): the
    /// node cannot follow metadata any more and must stop, as Kafka does when its metadata
    /// log dir fails.
    pub async fn failed(&self) -> String {
        self.quorum.failed().await
    }

    /// The quorum's state, for the HTTP API.
    pub fn status(&self) -> crate::controller::raft::QuorumStatus {
        self.quorum.status()
    }

    /// Adds a voter to the metadata quorum (AddRaftVoter); on the quorum leader only.
    pub async fn add_voter(
        &self,
        id: u64,
        addr: &str,
        timeout: Duration,
    ) -> Result<(), crate::controller::raft::membership::VoterChangeError> {
        self.quorum.add_voter(id, addr, timeout).await
    }

    /// Removes a voter from the metadata quorum (RemoveRaftVoter); on the quorum leader only.
    pub async fn remove_voter(
        &self,
        id: u64,
        timeout: Duration,
    ) -> Result<(), crate::controller::raft::membership::VoterChangeError> {
        self.quorum.remove_voter(id, timeout).await
    }

    /// The quorum's progress when this node leads it (DescribeQuorum), else `None`.
    pub fn describe_quorum(&self) -> Option<crate::controller::raft::QuorumDescription> {
        self.quorum.describe()
    }

    /// Registers a callback run with every newer committed image (and once now, with the
    /// current one). Under the applier's lock, so no image falls between the two.
    pub fn subscribe(&self, l: Listener) {
        let _published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        l(&self.image());
        if let Ok(mut ls) = self.listeners.lock() {
            ls.push(l);
        }
    }

    /// Gives `img` to the listeners if it is newer than what they last saw (the applier's
    /// work; see [`Controller::spawn_applier`]).
    fn publish(&self, img: &Arc<MetadataImage>) {
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        if img.version > *published {
            if let Ok(ls) = self.listeners.lock() {
                for l in ls.iter() {
                    l(img);
                }
            }
            *published = img.version;
        }
        let done = *published;
        self.applied.send_if_modified(|v| {
            let newer = done > *v;
            if newer {
                *v = done;
            }
            newer
        });
    }

    /// Proposes a command and waits until this node's applier has handed the image holding
    /// it to the listeners, so a client that created a topic can use it on this node at once.
    async fn propose(&self, cmd: MetadataCommand) -> Result<CommandResult, KafkaError> {
        let c = self
            .quorum
            .propose_committed(cmd)
            .await
            .map_err(quorum_error)?;
        let version = if c.index > 0 {
            c.index
        } else {
            self.image().version
        };
        self.wait_applied(version).await;
        Ok(c.result)
    }

    /// Creates a topic; with `validate_only` checks everything and changes nothing.
    pub async fn create_topic(
        &self,
        t: TopicCreation,
        validate_only: bool,
    ) -> Result<TopicMeta, KafkaError> {
        validate_topic_name(&t.name)?;
        let configs = defs::validate_topic_configs(&t.configs)
            .map_err(|InvalidConfig(m)| KafkaError::InvalidConfig(m))?;
        let img = self.image();
        if img.topics.contains_key(&t.name) {
            return Err(KafkaError::TopicAlreadyExists(format!(
                "Topic '{}' already exists.",
                t.name
            )));
        }
        if let Some(clash) = img
            .topics
            .keys()
            .find(|n| n.replace('.', "_") == t.name.replace('.', "_"))
        {
            return Err(KafkaError::InvalidTopic(format!("Topic '{}' collides with existing topic: {clash} ('.' and '_' collide in metric names)", t.name)));
        }
        let brokers = img.live_brokers();
        let assignment = match &t.assignment {
            Some(a) => placement::check_assignment(a, &brokers)?,
            None => placement::assign(t.partitions, t.replication_factor, &brokers, 0)?,
        };
        placement::check_capacity(&img, &assignment)?;
        let topic = TopicMeta {
            name: t.name.clone(),
            id: Uuid::new_v4(),
            partitions: assignment.into_iter().map(new_partition).collect(),
            configs,
        };
        if !validate_only {
            self.propose(MetadataCommand::CreateTopic {
                topic: topic.clone(),
            })
            .await?;
        }
        Ok(topic)
    }

    /// Deletes a topic by name.
    pub async fn delete_topic(&self, name: &str) -> Result<TopicMeta, KafkaError> {
        let topic = self
            .image()
            .topics
            .get(name)
            .map(|t| (**t).clone())
            .ok_or_else(|| {
                KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
            })?;
        self.propose(MetadataCommand::DeleteTopic {
            name: name.to_string(),
        })
        .await?;
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<BrokerId>>>,
        validate_only: bool,
    ) -> Result<(), KafkaError> {
        let img = self.image();
        let topic = img.topics.get(name).ok_or_else(|| {
            KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
        })?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(KafkaError::InvalidPartitions(format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}.")));
        }
        let rf = topic
            .partitions
            .first()
            .map(|p| p.replicas.len())
            .unwrap_or(1) as i16;
        let brokers = img.live_brokers();
        let added = match assignment {
            Some(a) => {
                if a.len() as i32 != count - current {
                    return Err(KafkaError::InvalidReplicaAssignment(format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        a.len()
                    )));
                }
                placement::check_assignment(&a, &brokers)?
            }
            None => placement::assign(count - current, rf, &brokers, current as usize)?,
        };
        placement::check_capacity(&img, &added)?;
        if !validate_only {
            self.propose(MetadataCommand::AddPartitions {
                name: name.to_string(),
                partitions: added.into_iter().map(new_partition).collect(),
            })
            .await?;
        }
        Ok(())
    }

    /// Replaces a topic's config overrides with `configs`.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), KafkaError> {
        let configs = defs::validate_topic_configs(&configs)
            .map_err(|InvalidConfig(m)| KafkaError::InvalidConfig(m))?;
        if !self.image().topics.contains_key(name) {
            return Err(KafkaError::UnknownTopicOrPartition(format!(
                "Topic '{name}' does not exist."
            )));
        }
        if !validate_only {
            self.propose(MetadataCommand::SetTopicConfigs {
                name: name.to_string(),
                configs,
            })
            .await?;
        }
        Ok(())
    }

    /// Sets and removes SCRAM credentials (validated by the caller).
    pub async fn alter_scram_credentials(
        &self,
        upserts: Vec<crate::metadata::security::ScramUpsert>,
        deletions: Vec<crate::metadata::security::ScramDeletion>,
    ) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::AlterScramCredentials { upserts, deletions })
            .await?;
        Ok(())
    }

    /// Adds ACL bindings (validated by the caller).
    pub async fn create_acls(
        &self,
        bindings: Vec<crate::metadata::acl::AclBinding>,
    ) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::CreateAcls { bindings })
            .await?;
        Ok(())
    }

    /// Removes ACL bindings.
    pub async fn delete_acls(
        &self,
        bindings: Vec<crate::metadata::acl::AclBinding>,
    ) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::DeleteAcls { bindings })
            .await?;
        Ok(())
    }

    /// Sets and removes client quotas, all or none.
    pub async fn alter_client_quotas(
        &self,
        changes: Vec<crate::metadata::quota::QuotaChange>,
    ) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::AlterClientQuotas { changes })
            .await?;
        Ok(())
    }

    /// Hands out a fresh producer id (InitProducerId without a transactional id).
    pub async fn allocate_producer_id(&self) -> Result<i64, KafkaError> {
        match self
            .propose(MetadataCommand::AllocateProducerIds { count: 1 })
            .await?
        {
            CommandResult::ProducerIds { first } => Ok(first),
            other => Err(KafkaError::Unknown(format!(
                "unexpected answer to a producer id allocation: {other:?}"
            ))),
        }
    }

    /// True while this node is the active controller (the metadata quorum's leader): the one
    /// that watches broker liveness and moves leaderships.
    pub fn is_active(&self) -> bool {
        // Half the session: an isolated leader stops acting as controller well before the
        // others' controller could fence it, so two never fence each other's brokers at once.
        self.status().role == crate::controller::raft::QuorumRole::Leader
            && self.quorum.out_of_contact() <= self.session_timeout / 2
    }

    /// True when this node has been out of touch with a quorum of the controllers for longer
    /// than `broker.session.timeout.ms`: by now the active controller has fenced it and moved
    /// its leaderships, so it must stop acting as a leader (refuse writes, stop advertising
    /// itself as leader) although its own, stale image still says it leads. Kafka's brokers
    /// keep serving on stale metadata until they hear otherwise; this closes that window.
    pub fn is_cut_off(&self) -> bool {
        self.quorum.out_of_contact() > self.session_timeout
    }

    /// A partition leader's ISR change (Kafka's AlterPartition, KIP-497): a compare-and-set on
    /// the partition's state. Refused with FENCED_LEADER_EPOCH when `leader` no longer leads
    /// in `leader_epoch`, and with INVALID_REQUEST when the state moved on (`partition_epoch`
    /// is not the current one) or the ISR is not a subset of the replicas holding the leader,
    /// or adds a fenced broker. Returns the committed state.
    pub async fn alter_partition_isr(
        &self,
        topic: &str,
        partition: i32,
        leader: BrokerId,
        leader_epoch: LeaderEpoch,
        partition_epoch: i32,
        isr: Vec<BrokerId>,
    ) -> Result<PartitionMeta, KafkaError> {
        let req = isr_batch::IsrRequest {
            topic: topic.to_string(),
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
        };
        // Checked when its batch is proposed, against the image of that moment.
        self.isr_queue.push(req).await.unwrap_or_else(|_| {
            Err(KafkaError::NotController(
                "the controller stopped before the ISR change was proposed".into(),
            ))
        })
    }

    /// The state an ISR change asks for, if `img` allows it (see [`Self::alter_partition_isr`]).
    fn isr_state(
        &self,
        img: &MetadataImage,
        req: &isr_batch::IsrRequest,
    ) -> Result<PartitionMeta, KafkaError> {
        let (topic, partition, leader, isr) = (&req.topic, req.partition, req.leader, &req.isr);
        let cur = img.partition(topic, partition).ok_or_else(|| {
            KafkaError::UnknownTopicOrPartition(format!("{topic}-{partition} does not exist."))
        })?;
        if cur.leader != leader || cur.leader_epoch != req.leader_epoch {
            return Err(KafkaError::FencedLeaderEpoch(format!(
                "{topic}-{partition} is led by {} in epoch {}, not by {leader} in epoch {}",
                cur.leader, cur.leader_epoch, req.leader_epoch
            )));
        }
        if cur.partition_epoch != req.partition_epoch {
            return Err(KafkaError::InvalidRequest(format!(
                "{topic}-{partition}: partition epoch {} is stale (current {})",
                req.partition_epoch, cur.partition_epoch
            )));
        }
        if !isr.contains(&leader) {
            return Err(KafkaError::InvalidRequest(format!(
                "{topic}-{partition}: the ISR {isr:?} must hold the leader {leader}"
            )));
        }
        for (i, id) in isr.iter().enumerate() {
            if !cur.replicas.contains(id) || isr[..i].contains(id) {
                return Err(KafkaError::InvalidRequest(format!(
                    "{topic}-{partition}: ISR member {id} is not a replica or is listed twice"
                )));
            }
            if !cur.isr.contains(id) && !img.replica_eligible(*id, topic, partition) {
                return Err(KafkaError::InvalidRequest(format!(
                    "{topic}-{partition}: broker {id} is fenced or its replica is offline, so it cannot join the ISR"
                )));
            }
        }
        Ok(PartitionMeta {
            isr: isr.clone(),
            partition_epoch: cur.partition_epoch + 1,
            ..cur.clone()
        })
    }

    /// Replaces one partition's state (leader elections, ISR changes): the state machine
    /// accepts it only if its partition epoch is newer than the committed one.
    pub async fn change_partition(
        &self,
        topic: &str,
        partition: i32,
        state: PartitionMeta,
    ) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::ChangePartition {
            topic: topic.to_string(),
            partition,
            state,
        })
        .await
        .map(|_| ())
    }

    /// Proposes many partition changes as one entry (at most
    /// [`raft::command::MAX_CHANGES_PER_ENTRY`]); returns the indices of the changes refused
    /// as stale.
    pub async fn change_partitions(
        &self,
        changes: Vec<raft::command::PartitionChange>,
    ) -> Result<Vec<usize>, KafkaError> {
        match self
            .propose(MetadataCommand::ChangePartitions { changes })
            .await?
        {
            raft::command::CommandResult::Changes { refused } => Ok(refused),
            _ => Ok(Vec::new()),
        }
    }

    /// Marks `broker`'s replicas of `partitions` offline (their log dir failed): the active
    /// controller moves their leadership and ISR membership away (`liveness::plan`).
    /// `no_storage`: every log dir of `broker` is offline, so it gets no new replicas.
    pub async fn mark_replicas_offline(
        &self,
        broker: BrokerId,
        partitions: Vec<crate::types::TopicPartition>,
        no_storage: bool,
    ) -> Result<(), KafkaError> {
        let epoch = self
            .image()
            .broker_epochs
            .get(&broker)
            .copied()
            .ok_or_else(|| {
                KafkaError::InvalidRequest(format!("broker {broker} is not registered"))
            })?;
        self.propose(MetadataCommand::MarkReplicasOffline {
            broker,
            epoch,
            partitions,
            no_storage,
        })
        .await
        .map(|_| ())
    }

    /// Fences a broker: it may no longer lead partitions or join an ISR.
    pub async fn fence_broker(&self, id: BrokerId) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::FenceBroker { id })
            .await
            .map(|_| ())
    }

    /// Unfences a broker that answers again.
    pub async fn unfence_broker(&self, id: BrokerId) -> Result<(), KafkaError> {
        self.propose(MetadataCommand::UnfenceBroker { id })
            .await
            .map(|_| ())
    }

    /// The active controller's own change (a liveness verdict or a partition state change
    /// planned from it): proposed only while this node leads the quorum, never forwarded,
    /// waiting at most `broker.session.timeout.ms` (see [`MetadataQuorum::propose_as_leader`]).
    pub async fn propose_as_active(&self, cmd: MetadataCommand) -> Result<(), KafkaError> {
        self.quorum
            .propose_as_leader(cmd, self.session_timeout)
            .await
            .map_err(quorum_error)?;
        // On the leader the change is in its image once committed.
        self.wait_applied(self.image().version).await;
        Ok(())
    }

    /// Leaves the quorum (clean shutdown).
    pub async fn shutdown(&self) {
        if let Err(e) = self.quorum.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum shutdown");
        }
    }
}

fn quorum_error(e: QuorumError) -> KafkaError {
    match e {
        QuorumError::Rejected(CommandError::TopicExists(n)) => {
            KafkaError::TopicAlreadyExists(format!("Topic '{n}' already exists."))
        }
        QuorumError::Rejected(CommandError::UnknownTopic(n)) => {
            KafkaError::UnknownTopicOrPartition(format!("Topic '{n}' does not exist."))
        }
        QuorumError::Rejected(other) => KafkaError::InvalidRequest(other.to_string()),
        QuorumError::Timeout { .. } => KafkaError::RequestTimedOut(format!(
            "the metadata quorum did not commit the change in time: {e}"
        )),
        other => KafkaError::NotController(format!("metadata quorum unavailable: {other}")),
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
            endpoints: Vec::new(),
            id: BrokerId(1),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            max_partitions: None,
        }
    }

    fn topic(name: &str, partitions: i32) -> TopicCreation {
        TopicCreation {
            name: name.into(),
            partitions,
            replication_factor: 1,
            assignment: None,
            configs: BTreeMap::new(),
        }
    }

    async fn start(dir: &Path) -> Arc<Controller> {
        let cfg = BrokerConfig::load(None, &[]).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Controller::start(&cfg, dir, "cid-0123456789abcdefghi", me(), l)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_persist_reload() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(dir.path()).await;
        assert_eq!(c.image().cluster_id, "cid-0123456789abcdefghi");
        assert!(
            c.image().live_brokers().iter().any(|b| b.id == BrokerId(1)),
            "registered and unfenced"
        );
        c.create_topic(topic("a", 3), false).await.unwrap();
        assert!(matches!(
            c.create_topic(topic("a", 1), false).await,
            Err(KafkaError::TopicAlreadyExists(_))
        ));
        c.create_topic(topic("b", 1), true).await.unwrap();
        assert!(
            !c.image().topics.contains_key("b"),
            "validate_only must not create"
        );
        c.create_partitions("a", 5, None, false).await.unwrap();
        assert!(matches!(
            c.create_partitions("a", 5, None, false).await,
            Err(KafkaError::InvalidPartitions(_))
        ));
        let first = c.allocate_producer_id().await.unwrap();
        assert_eq!(c.allocate_producer_id().await.unwrap(), first + 1);
        c.shutdown().await;
        drop(c);
        let c = start(dir.path()).await;
        assert_eq!(c.image().topics["a"].partitions.len(), 5);
        assert!(
            c.allocate_producer_id().await.unwrap() > first + 1,
            "producer ids are never reused"
        );
        c.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn names_and_configs_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(dir.path()).await;
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(
                matches!(
                    c.create_topic(topic(bad, 1), false).await,
                    Err(KafkaError::InvalidTopic(_))
                ),
                "{bad:?}"
            );
        }
        let mut t = topic("c", 1);
        t.configs.insert("retention.ms".into(), "abc".into());
        assert!(matches!(
            c.create_topic(t, false).await,
            Err(KafkaError::InvalidConfig(_))
        ));
        c.create_topic(topic("x.y", 1), false).await.unwrap();
        assert!(matches!(
            c.create_topic(topic("x_y", 1), false).await,
            Err(KafkaError::InvalidTopic(_))
        ));
        c.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn listeners_see_images_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = start(dir.path()).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        c.subscribe(Box::new(move |img| s.lock().unwrap().push(img.version)));
        for i in 0..5 {
            c.create_topic(topic(&format!("t{i}"), 1), false)
                .await
                .unwrap();
        }
        let v = seen.lock().unwrap().clone();
        assert!(
            v.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing versions: {v:?}"
        );
        c.shutdown().await;
    }
}
