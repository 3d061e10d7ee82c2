//! The cluster's brokers as DescribeCluster reports them, fenced ones included on request
//! (KIP-1073), as a method on [`Cluster`].

use kafka_protocol::messages::DescribeClusterRequest;

use super::{ClientError, Cluster};

/// One broker of a DescribeCluster answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBroker {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced (down, or shutting down): registered but not serving. Always false from a
    /// broker without DescribeCluster v2.
    pub fenced: bool,
}

/// A DescribeCluster answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: String,
    /// The active controller's node id (-1 when unknown).
    pub controller_id: i32,
    /// The brokers, by id.
    pub brokers: Vec<ClusterBroker>,
}

impl Cluster {
    /// DescribeCluster. With `include_fenced`, fenced brokers are listed too (v2 brokers;
    /// older ones list only the live brokers).
    pub async fn describe_cluster(
        &self,
        include_fenced: bool,
    ) -> Result<ClusterDescription, ClientError> {
        let mut conn = self.any_connection().await?;
        let version = conn.version_for::<DescribeClusterRequest>()?;
        let mut req = DescribeClusterRequest::default();
        if version >= 2 {
            req = req.with_include_fenced_brokers(include_fenced);
        }
        let resp = conn.send_version(req, version).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        let mut brokers: Vec<ClusterBroker> = resp
            .brokers
            .into_iter()
            .map(|b| ClusterBroker {
                node_id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
                fenced: b.is_fenced,
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        Ok(ClusterDescription {
            cluster_id: resp.cluster_id.to_string(),
            controller_id: resp.controller_id.0,
            brokers,
        })
    }
}
