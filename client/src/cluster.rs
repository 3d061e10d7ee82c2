//! A client's view of a cluster: bootstrap, metadata, one connection per node, routing to
//! any node, a given node, the controller or a group's coordinator.

use std::collections::{BTreeMap, HashMap};
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

/// A connected client for one cluster: the node map from Metadata and at most one
/// connection per node, opened on first use and replaced after it breaks.
///
/// Every method takes `&mut self` (one request in flight at a time); share it behind a
/// `tokio::sync::Mutex`, or open one `Cluster` per task.
#[derive(Debug)]
pub struct Cluster {
    config: ConnectionConfig,
    bootstrap: Vec<String>,
    nodes: BTreeMap<i32, BrokerNode>,
    conns: HashMap<i32, Connection>,
    /// The connection used for bootstrapping (its node id is not known).
    bootstrap_conn: Option<Connection>,
    controller_id: Option<i32>,
    cluster_id: Option<String>,
}

impl Cluster {
    /// Connects to the first reachable server of `bootstrap` (a comma-separated
    /// `host:port` list) and loads the broker list from Metadata.
    pub async fn connect(
        bootstrap: &str,
        config: ConnectionConfig,
    ) -> Result<Cluster, ClientError> {
        let servers = parse_bootstrap(bootstrap)?;
        let mut cluster = Cluster {
            config,
            bootstrap: servers,
            nodes: BTreeMap::new(),
            conns: HashMap::new(),
            bootstrap_conn: None,
            controller_id: None,
            cluster_id: None,
        };
        cluster.metadata(Some(&[])).await?;
        Ok(cluster)
    }

    /// The connection settings.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The brokers from the latest Metadata (plus coordinators learned since), by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerNode> {
        self.nodes.values()
    }

    /// The controller's node id from the latest Metadata.
    pub fn controller_id(&self) -> Option<i32> {
        self.controller_id
    }

    /// The cluster id from the latest Metadata.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Fetches Metadata: `None` for every topic, `Some(names)` for those topics only
    /// (`Some(&[])` for brokers only). Never asks the broker to auto-create a topic (at
    /// Metadata v4+; older versions always may). Updates the node map.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<ClusterMetadata, ClientError> {
        let conn = self.any_connection().await?;
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
        let md = convert_metadata(resp);
        if md.brokers.is_empty() {
            return Err(ClientError::Protocol(
                "Metadata response lists no brokers".into(),
            ));
        }
        self.nodes = md.brokers.iter().map(|b| (b.node_id, b.clone())).collect();
        // Connections to nodes that left, or moved, are closed.
        let nodes = &self.nodes;
        self.conns.retain(|id, c| {
            nodes
                .get(id)
                .is_some_and(|n| n.addr() == c.addr() && c.is_usable())
        });
        // A bootstrap connection to an address a node advertises becomes that node's.
        if let Some(c) = self.bootstrap_conn.take() {
            let node = self
                .nodes
                .values()
                .find(|n| n.addr() == c.addr() && !self.conns.contains_key(&n.node_id))
                .map(|n| n.node_id);
            match node {
                Some(id) => {
                    self.conns.insert(id, c);
                }
                None => self.bootstrap_conn = Some(c),
            }
        }
        self.controller_id = md.controller_id;
        self.cluster_id.clone_from(&md.cluster_id);
        Ok(md)
    }

    /// The connection to node `node`, opened if needed.
    pub async fn connection(&mut self, node: i32) -> Result<&mut Connection, ClientError> {
        if !self.conns.get(&node).is_some_and(Connection::is_usable) {
            self.conns.remove(&node);
            let addr = self
                .nodes
                .get(&node)
                .ok_or(ClientError::UnknownNode(node))?
                .addr();
            let conn = Connection::connect(&addr, self.config.clone()).await?;
            self.conns.insert(node, conn);
        }
        self.conns
            .get_mut(&node)
            .ok_or(ClientError::UnknownNode(node))
    }

    /// Some usable connection: an open one if there is one, else the first node (then
    /// bootstrap server) that accepts a connection.
    pub async fn any_connection(&mut self) -> Result<&mut Connection, ClientError> {
        self.conns.retain(|_, c| c.is_usable());
        if let Some(&id) = self.conns.keys().min() {
            return self.connection(id).await;
        }
        if self
            .bootstrap_conn
            .as_ref()
            .is_some_and(Connection::is_usable)
        {
            return self
                .bootstrap_conn
                .as_mut()
                .ok_or_else(|| ClientError::NoBrokerReachable(String::new()));
        }
        self.bootstrap_conn = None;
        let mut failures = Vec::new();
        let ids: Vec<i32> = self.nodes.keys().copied().collect();
        for id in ids {
            match self.connection(id).await {
                Ok(_) => return self.connection(id).await,
                Err(e) => {
                    tracing::debug!(node = id, error = %e, "node unreachable");
                    failures.push(format!("node {id}: {e}"));
                }
            }
        }
        for addr in self.bootstrap.clone() {
            match Connection::connect(&addr, self.config.clone()).await {
                Ok(c) => return Ok(self.bootstrap_conn.insert(c)),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap server unreachable");
                    failures.push(e.to_string());
                }
            }
        }
        Err(ClientError::NoBrokerReachable(failures.join("; ")))
    }

    /// Sends `req` to node `node` at the highest common version.
    pub async fn send_to<R: Request>(
        &mut self,
        node: i32,
        req: R,
    ) -> Result<R::Response, ClientError> {
        self.connection(node).await?.send(req).await
    }

    /// Sends `req` to any reachable node at the highest common version.
    pub async fn send_to_any<R: Request>(&mut self, req: R) -> Result<R::Response, ClientError> {
        self.any_connection().await?.send(req).await
    }

    /// Sends `req` to the controller when its node is known, else to any node (KRaft
    /// brokers forward controller requests).
    pub async fn send_to_controller<R: Request>(
        &mut self,
        req: R,
    ) -> Result<R::Response, ClientError> {
        match self.controller_id.filter(|id| self.nodes.contains_key(id)) {
            Some(id) => self.send_to(id, req).await,
            None => self.send_to_any(req).await,
        }
    }

    /// The node coordinating consumer group `group` (FindCoordinator; batched keys at v4+).
    /// COORDINATOR_NOT_AVAILABLE and other retriable answers are retried until the request
    /// timeout passes (the offsets topic may still be being created).
    pub async fn coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            match self.find_coordinator_once(group).await {
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

    async fn find_coordinator_once(&mut self, group: &str) -> Result<i32, ClientError> {
        let key = StrBytes::from_string(group.to_string());
        let conn = self.any_connection().await?;
        let version = conn.version_for::<FindCoordinatorRequest>()?;
        let (node_id, host, port) = if version >= 4 {
            let req = FindCoordinatorRequest::default()
                .with_key_type(0)
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
            let req = FindCoordinatorRequest::default().with_key(key);
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
        let node = BrokerNode {
            node_id,
            host,
            port,
            rack: self.nodes.get(&node_id).and_then(|n| n.rack.clone()),
        };
        if self.nodes.get(&node_id) != Some(&node) {
            self.conns.remove(&node_id);
            self.nodes.insert(node_id, node);
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
