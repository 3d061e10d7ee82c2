//! DescribeCluster: cluster id, controller and brokers (what admin clients use in KRaft mode).
//! Like Kafka, only unfenced brokers are listed unless a v2 request sets
//! `include_fenced_brokers` (KIP-1073), which lists every registered broker with `is_fenced`,
//! so a console can show a broker that is down. Metadata leaves fenced brokers out after a
//! few seconds' grace (`metadata::FENCED_GRACE`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::sb;
use crate::context::Broker;

/// `endpoint_type` values (v1+).
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

/// Handles DescribeCluster. Like Kafka's brokers it needs no ACL: any authenticated client
/// may learn the brokers (Metadata tells the same), DESCRIBE on the cluster only adds the
/// authorized operations, which Rill does not report.
pub async fn handle(
    b: &Broker,
    req: DescribeClusterRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeClusterResponse {
    let resp = DescribeClusterResponse::default().with_endpoint_type(ENDPOINT_BROKER);
    if version >= 1 && req.endpoint_type != ENDPOINT_BROKER {
        // Kafka's brokers answer only for the broker endpoints; controllers are asked directly.
        let (code, msg) = if req.endpoint_type == ENDPOINT_CONTROLLER {
            (
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            )
        } else {
            (
                ResponseError::UnsupportedEndpointType,
                "Unsupported endpoint type",
            )
        };
        return resp
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)))
            .with_cluster_id(sb(b.controller.image().cluster_id.clone()))
            .with_controller_id(BrokerId(-1));
    }
    let image = b.controller.image();
    let include_fenced = version >= 2 && req.include_fenced_brokers;
    let brokers = image
        .brokers
        .values()
        .filter_map(|bi| {
            let fenced = image.fenced_brokers.contains(&bi.id);
            if fenced && !include_fenced {
                return None;
            }
            let (host, port) = bi.endpoint_for(ctx.listener)?;
            let mut out = DescribeClusterBroker::default()
                .with_broker_id(BrokerId(bi.id.0))
                .with_host(sb(host))
                .with_port(port as i32)
                .with_rack(bi.rack.clone().map(sb));
            if version >= 2 {
                out = out.with_is_fenced(fenced);
            }
            Some(out)
        })
        .collect();
    resp.with_cluster_id(sb(image.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_id.0))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            super::metadata::CLUSTER_OPERATIONS
        } else {
            i32::MIN
        })
}
