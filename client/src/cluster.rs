//! A client's view of a cluster: bootstrap, metadata, one connection per node, routing to
//! any node, a given node, the controller or a group's coordinator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use uuid::Uuid;

use super::{ClientError, Connection, ConnectionConfig};

/// Pause between retries of retriable errors (coordinator loading, leader elections).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// A broker as the cluster metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerNode {
    /// The node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, when configured.
    pub rack: Option<String>,
}

impl BrokerNode {
    /// `host:port`, with brackets around an IPv6 host.
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition in the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader node id, -1 when there is none.
    pub leader: i32,
    /// Leader epoch (-1 when the broker's Metadata version does not carry it).
    pub leader_epoch: i32,
    /// All replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas that are offline.
    pub offline_replicas: Vec<i32>,
    /// Kafka error code for this partition (0 = none; LEADER_NOT_AVAILABLE is common).
    pub error_code: i16,
}

/// One topic in the cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (nil when the broker's Metadata version does not carry it).
    pub topic_id: Uuid,
    /// True for internal topics such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionMetadata>,
    /// Kafka error code for the topic (0 = none; UNKNOWN_TOPIC_OR_PARTITION for a missing
    /// topic that was asked for by name).
    pub error_code: i16,
}

impl TopicMetadata {
    /// The topic's error, if any.
    pub fn error(&self) -> Result<(), ClientError> {
        ClientError::check(self.error_code, Some(&format!("topic '{}'", self.name)))
    }

    /// Replication factor (replicas of partition 0; 0 for a topic without partitions).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A Metadata answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Cluster id, when the broker reports one.
    pub cluster_id: Option<String>,
    /// Active controller's node id, when known.
    pub controller_id: Option<i32>,
    /// Live brokers, sorted by id.
    pub brokers: Vec<BrokerNode>,
    /// Topics asked for (all, when none were named), sorted by name.
    pub topics: Vec<TopicMetadata>,
}

impl ClusterMetadata {
    /// The topic named `name`, if the answer has it.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A slot for one node's connection: at most one request in flight on it at a time.
type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// What Metadata last said: the nodes, the controller and the cluster id.
#[derive(Debug, Default)]
struct Known {
    nodes: BTreeMap<i32, BrokerNode>,
    controller_id: Option<i32>,
    cluster_id: Option<String>,
}

/// A client for one cluster: the node map from Metadata and at most one connection per
/// node, opened on first use and replaced after it breaks.
///
/// Every method takes `&self`: share one `Cluster` (behind an `Arc`) between tasks.
/// Requests to different nodes run concurrently; requests to one node queue on its
/// connection. It heals by itself: a connection that failed is dropped and dialled again
/// on the next request, and when no known node answers the bootstrap list is tried in
/// order, so one dead broker never makes the cluster unreachable while another answers.
#[derive(Debug)]
pub struct Cluster {
    config: ConnectionConfig,
    bootstrap: Vec<String>,
    /// Never held across an `.await`.
    known: std::sync::Mutex<Known>,
    /// Never held across an `.await` (a slot's own lock is).
    slots: std::sync::Mutex<HashMap<i32, Slot>>,
    /// The connection used for bootstrapping (its node id is not known).
    bootstrap_slot: Slot,
}

/// A node's connection, held for one exchange (the node's slot stays locked meanwhile).
#[derive(Debug)]
pub struct NodeConnection {
    guard: tokio::sync::OwnedMutexGuard<Option<Connection>>,
}

impl std::ops::Deref for NodeConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Invariant: a NodeConnection is only made from a slot that holds a connection.
        self.guard
            .as_ref()
            .expect("a NodeConnection always holds a connection")
    }
}

impl std::ops::DerefMut for NodeConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        self.guard
            .as_mut()
            .expect("a NodeConnection always holds a connection")
    }
}

impl Cluster {
    /// A client for `bootstrap` (a comma-separated `host:port` list) that connects on
    /// first use. Fails only on a malformed list.
    pub fn new(bootstrap: &str, config: ConnectionConfig) -> Result<Cluster, ClientError> {
        Ok(Cluster {
            config,
            bootstrap: parse_bootstrap(bootstrap)?,
            known: std::sync::Mutex::new(Known::default()),
            slots: std::sync::Mutex::new(HashMap::new()),
            bootstrap_slot: Arc::new(tokio::sync::Mutex::new(None)),
        })
    }

    /// Connects to the first reachable server of `bootstrap` and loads the broker list
    /// from Metadata.
    pub async fn connect(
        bootstrap: &str,
        config: ConnectionConfig,
    ) -> Result<Cluster, ClientError> {
        let cluster = Cluster::new(bootstrap, config)?;
        cluster.metadata(Some(&[])).await?;
        Ok(cluster)
    }

    /// The connection settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The brokers from the latest Metadata (plus coordinators learned since), by id.
    pub fn brokers(&self) -> Vec<BrokerNode> {
        self.known().nodes.values().cloned().collect()
    }

    /// The controller's node id from the latest Metadata.
    pub fn controller_id(&self) -> Option<i32> {
        self.known().controller_id
    }

    /// The cluster id from the latest Metadata.
    pub fn cluster_id(&self) -> Option<String> {
        self.known().cluster_id.clone()
    }

    /// Fetches Metadata: `None` for every topic, `Some(names)` for those topics only
    /// (`Some(&[])` for brokers only). Never asks the broker to auto-create a topic (at
    /// Metadata v4+; older versions always may). Updates the node map.
    pub async fn metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<ClusterMetadata, ClientError> {
        let mut conn = self.any_connection().await?;
        let version = conn.version_for::<MetadataRequest>()?;
        let topics = match topics {
            None if version == 0 => Some(Vec::new()),
            None => None,
            Some([]) if version == 0 => {
                return Err(ClientError::Protocol(
                    "Metadata v0 cannot list brokers without listing every topic".into(),
                ))
            }
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect(),
            ),
        };
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(version < 4);
        let resp = conn.send_version(req, version).await?;
        drop(conn);
        let md = convert_metadata(resp);
        if md.brokers.is_empty() {
            return Err(ClientError::Protocol(
                "Metadata response lists no brokers".into(),
            ));
        }
        let nodes: BTreeMap<i32, BrokerNode> =
            md.brokers.iter().map(|b| (b.node_id, b.clone())).collect();
        {
            // Slots of nodes that left or moved are dropped (an exchange holding one
            // finishes on its own copy).
            let old = std::mem::replace(&mut self.known().nodes, nodes.clone());
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.retain(|id, _| nodes.get(id).is_some_and(|n| old.get(id) == Some(n)));
        }
        // The bootstrap connection becomes the connection of the node that advertises its
        // address (or is closed): a stale one must never answer for the cluster later.
        if let Ok(mut boot) = self.bootstrap_slot.try_lock() {
            if let Some(c) = boot.take() {
                let owner = nodes.values().find(|n| n.addr() == c.addr());
                if let Some(n) = owner {
                    if let Ok(mut slot) = self.slot(n.node_id).try_lock() {
                        if slot.is_none() {
                            *slot = Some(c);
                        }
                    }
                }
            }
        }
        let mut known = self.known();
        known.controller_id = md.controller_id;
        known.cluster_id.clone_from(&md.cluster_id);
        Ok(md)
    }

    fn slot(&self, node: i32) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(node)
            .or_default()
            .clone()
    }

    /// The connection to node `node`, opened (again) if there is none or it broke.
    /// A node not in the node map yet (a client that has not asked Metadata, or a node
    /// that joined since) is looked up with one Metadata request first.
    pub async fn connection(&self, node: i32) -> Result<NodeConnection, ClientError> {
        let addr_of = |c: &Cluster| c.known().nodes.get(&node).map(BrokerNode::addr);
        let addr = match addr_of(self) {
            Some(a) => a,
            None => {
                // Boxed: metadata() dials through any_connection(), which calls this.
                Box::pin(self.metadata(Some(&[]))).await?;
                addr_of(self).ok_or(ClientError::UnknownNode(node))?
            }
        };
        let mut guard = self.slot(node).lock_owned().await;
        if !guard.as_ref().is_some_and(Connection::is_usable) {
            *guard = None;
            *guard = Some(Connection::connect(&addr, self.config.clone()).await?);
        }
        Ok(NodeConnection { guard })
    }

    /// Some usable connection: the first known node (lowest id first) that has or accepts
    /// one, else the first bootstrap server that accepts one.
    pub async fn any_connection(&self) -> Result<NodeConnection, ClientError> {
        let mut failures = Vec::new();
        let ids: Vec<i32> = self.known().nodes.keys().copied().collect();
        // Nodes with an open connection first: no dial.
        let open: Vec<i32> = {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter()
                .copied()
                .filter(|id| {
                    slots.get(id).is_some_and(|s| {
                        s.try_lock()
                            .map(|c| c.as_ref().is_some_and(Connection::is_usable))
                            .unwrap_or(true)
                    })
                })
                .collect()
        };
        for id in open
            .iter()
            .chain(ids.iter().filter(|id| !open.contains(id)))
        {
            match self.connection(*id).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::debug!(node = id, error = %e, "node unreachable");
                    failures.push(format!("node {id}: {e}"));
                }
            }
        }
        let mut guard = self.bootstrap_slot.clone().lock_owned().await;
        if guard.as_ref().is_some_and(Connection::is_usable) {
            return Ok(NodeConnection { guard });
        }
        *guard = None;
        for addr in &self.bootstrap {
            match Connection::connect(addr, self.config.clone()).await {
                Ok(c) => {
                    *guard = Some(c);
                    return Ok(NodeConnection { guard });
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap server unreachable");
                    failures.push(e.to_string());
                }
            }
        }
        Err(ClientError::NoBrokerReachable(failures.join("; ")))
    }

    /// Sends `req` to node `node` at the highest common version.
    pub async fn send_to<R: Request>(&self, node: i32, req: R) -> Result<R::Response, ClientError> {
        self.connection(node).await?.send(req).await
    }

    /// Sends `req` to any reachable node at the highest common version.
    pub async fn send_to_any<R: Request>(&self, req: R) -> Result<R::Response, ClientError> {
        self.any_connection().await?.send(req).await
    }

    /// The controller when its node is known, else `None` (KRaft brokers forward
    /// controller requests, so any node will do).
    pub fn known_controller(&self) -> Option<i32> {
        let known = self.known();
        known
            .controller_id
            .filter(|id| known.nodes.contains_key(id))
    }

    /// Sends `req` to the controller when its node is known, else to any node.
    pub async fn send_to_controller<R: Request>(&self, req: R) -> Result<R::Response, ClientError> {
        match self.known_controller() {
            Some(id) => self.send_to(id, req).await,
            None => self.send_to_any(req).await,
        }
    }

    /// The node coordinating consumer group `group` (FindCoordinator; batched keys at v4+).
    /// COORDINATOR_NOT_AVAILABLE and other retriable answers are retried until the request
    /// timeout passes (the offsets topic may still be being created).
    pub async fn coordinator(&self, group: &str) -> Result<i32, ClientError> {
        self.coordinator_of(group, 0).await
    }

    /// The node coordinating transactional id `id` (FindCoordinator key type 1), retried as
    /// [`Cluster::coordinator`] is (`__transaction_state` may still be being created).
    pub async fn transaction_coordinator(&self, id: &str) -> Result<i32, ClientError> {
        self.coordinator_of(id, 1).await
    }

    async fn coordinator_of(&self, group: &str, key_type: i8) -> Result<i32, ClientError> {
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            match self.find_coordinator_once(group, key_type).await {
                Ok(node) => return Ok(node),
                Err(e @ ClientError::Kafka { .. })
                    if e.is_retriable() && Instant::now() + RETRY_BACKOFF < deadline =>
                {
                    tracing::debug!(group, error = %e, "coordinator not ready; retrying");
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn find_coordinator_once(&self, group: &str, key_type: i8) -> Result<i32, ClientError> {
        let key = StrBytes::from_string(group.to_string());
        let mut conn = self.any_connection().await?;
        let version = conn.version_for::<FindCoordinatorRequest>()?;
        let (node_id, host, port) = if version >= 4 {
            let req = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![key]);
            let resp = conn.send_version(req, version).await?;
            let c = resp
                .coordinators
                .into_iter()
                .find(|c| &*c.key == group)
                .ok_or_else(|| {
                    ClientError::Protocol(format!(
                        "FindCoordinator response has no entry for group '{group}'"
                    ))
                })?;
            ClientError::check(c.error_code, c.error_message.as_deref())?;
            (c.node_id.0, c.host.to_string(), c.port)
        } else {
            // Key type 1 needs v1+; a v0-only broker has no transactions either.
            let req = FindCoordinatorRequest::default()
                .with_key(key)
                .with_key_type(key_type);
            let resp = conn.send_version(req, version).await?;
            ClientError::check(resp.error_code, resp.error_message.as_deref())?;
            (resp.node_id.0, resp.host.to_string(), resp.port)
        };
        if node_id < 0 {
            return Err(ClientError::kafka(
                ResponseError::CoordinatorNotAvailable,
                format!("no coordinator for group '{group}'"),
            ));
        }
        drop(conn);
        let mut known = self.known();
        let node = BrokerNode {
            node_id,
            host,
            port,
            rack: known.nodes.get(&node_id).and_then(|n| n.rack.clone()),
        };
        if known.nodes.get(&node_id) != Some(&node) {
            known.nodes.insert(node_id, node);
            drop(known);
            self.slots
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&node_id);
        }
        Ok(node_id)
    }
}

/// Splits a `host:port[,host:port...]` list, checking each entry's shape.
pub fn parse_bootstrap(list: &str) -> Result<Vec<String>, ClientError> {
    let servers: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| ClientError::InvalidAddress(s.to_string()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(ClientError::InvalidAddress(s.to_string()));
            }
            Ok(s.to_string())
        })
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err(ClientError::InvalidAddress(list.to_string()));
    }
    Ok(servers)
}

fn convert_metadata(resp: MetadataResponse) -> ClusterMetadata {
    let mut brokers: Vec<BrokerNode> = resp
        .brokers
        .into_iter()
        .map(|b| BrokerNode {
            node_id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
            rack: b.rack.map(|r| r.to_string()),
        })
        .collect();
    brokers.sort_by_key(|b| b.node_id);
    let mut topics: Vec<TopicMetadata> = resp
        .topics
        .into_iter()
        .map(|t| {
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            TopicMetadata {
                name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions,
                error_code: t.error_code,
            }
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    ClusterMetadata {
        cluster_id: resp.cluster_id.map(|c| c.to_string()),
        controller_id: Some(resp.controller_id.0).filter(|id| *id >= 0),
        brokers,
        topics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_are_checked() {
        assert_eq!(
            parse_bootstrap("a:1, b:2,").unwrap(),
            vec!["a:1".to_string(), "b:2".to_string()]
        );
        assert_eq!(parse_bootstrap("[::1]:9092").unwrap(), vec!["[::1]:9092"]);
        for bad in [
            "",
            "nohost",
            "host:",
            ":9092",
            "host:notaport",
            "host:0",
            "h:70000",
        ] {
            assert!(
                matches!(parse_bootstrap(bad), Err(ClientError::InvalidAddress(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn ipv6_hosts_get_brackets() {
        let n = BrokerNode {
            node_id: 1,
            host: "::1".into(),
            port: 9092,
            rack: None,
        };
        assert_eq!(n.addr(), "[::1]:9092");
    }
}
