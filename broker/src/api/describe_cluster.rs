//! DescribeCluster: cluster id, controller and brokers (what admin clients use in KRaft mode).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::sb;
use crate::server::Broker;

/// Handles DescribeCluster.
pub async fn handle(
    b: &Broker,
    req: DescribeClusterRequest,
    _version: i16,
    _ctx: &super::Ctx<'_>,
) -> DescribeClusterResponse {
    let image = b.controller.image();
    let brokers = image
        .brokers
        .values()
        .map(|bi| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(bi.id.0))
                .with_host(sb(bi.host.clone()))
                .with_port(bi.port as i32)
                .with_rack(bi.rack.clone().map(sb))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(sb(image.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_id.0))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            super::metadata::CLUSTER_OPERATIONS
        } else {
            i32::MIN
        })
}
