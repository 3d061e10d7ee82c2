//! Request dispatch: header decoding, version checks, one handler module per Kafka API, and
//! response framing. The wire format is entirely `kafka-protocol`'s.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod auto_create;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod versions;

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use std::sync::Arc;

use crate::context::Broker;

/// The request handlers' entry point: the node's context plus the state that belongs to one
/// handler (Metadata's fenced-broker grace), owned here rather than by the node.
pub struct Dispatcher {
    broker: Arc<Broker>,
    fenced_grace: metadata::FencedGrace,
}

impl Dispatcher {
    /// Handlers over `broker`.
    pub fn new(broker: Arc<Broker>) -> Dispatcher {
        Dispatcher {
            broker,
            fenced_grace: metadata::FencedGrace::default(),
        }
    }

    /// The node's context.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }
}

/// Who sent a request: what handlers may need beyond the request body.
pub struct Ctx<'a> {
    /// The decoded request header (client id, correlation id).
    pub header: &'a RequestHeader,
    /// The client's address.
    pub peer: std::net::SocketAddr,
}

impl Ctx<'_> {
    /// The client id from the header, or "".
    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default()
    }
}

/// What the connection should do after a request.
pub enum Outcome {
    /// Send the bytes now in the output buffer.
    Respond,
    /// Nothing to send (Produce with acks=0).
    NoResponse,
    /// Close the connection, logging the reason (unparseable or unsupported request).
    Close(String),
}

/// Decodes and handles one frame, writing the size-prefixed response into `out`.
pub async fn handle_frame(
    d: &Dispatcher,
    peer: std::net::SocketAddr,
    mut frame: Bytes,
    out: &mut BytesMut,
) -> Outcome {
    if frame.len() < 8 {
        return Outcome::Close(format!(
            "frame of {} bytes is too short for a request header",
            frame.len()
        ));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Outcome::Close(format!("unknown API key {key}"));
    };
    let Some(range) = versions::supported(api) else {
        return Outcome::Close(format!("API {api:?} is not supported by this broker"));
    };
    if api == ApiKey::ApiVersions && version > range.max {
        // KIP-511: a client newer than us gets a v0 answer listing what we do support.
        return encode(
            out,
            correlation_id,
            ApiKey::ApiVersions,
            0,
            &api_versions::unsupported(),
        );
    }
    if version < range.min || version > range.max {
        return Outcome::Close(format!(
            "{api:?} v{version} is not supported (this broker serves v{}..=v{})",
            range.min, range.max
        ));
    }
    let header = match RequestHeader::decode(&mut frame, api.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => {
            return Outcome::Close(format!("malformed {api:?} v{version} request header: {e}"))
        }
    };
    let ctx = Ctx {
        header: &header,
        peer,
    };
    let b = d.broker.as_ref();
    let started = Instant::now();
    let name = versions::name(api);
    b.metrics
        .requests
        .with_label_values(&[name, &version.to_string()])
        .inc();
    macro_rules! run {
        ($req:ty, $handler:path) => {{
            match <$req>::decode(&mut frame, version) {
                Ok(req) => {
                    let resp = $handler(b, req, version, &ctx).await;
                    encode(out, correlation_id, api, version, &resp)
                }
                Err(e) => Outcome::Close(format!("malformed {api:?} v{version} request: {e}")),
            }
        }};
    }
    let outcome = match api {
        ApiKey::ApiVersions => run!(ApiVersionsRequest, api_versions::handle),
        ApiKey::Metadata => match MetadataRequest::decode(&mut frame, version) {
            Ok(req) => {
                let resp = metadata::handle(b, &d.fenced_grace, req, version, &ctx).await;
                encode(out, correlation_id, api, version, &resp)
            }
            Err(e) => Outcome::Close(format!("malformed Metadata v{version} request: {e}")),
        },
        ApiKey::Produce => match ProduceRequest::decode(&mut frame, version) {
            Ok(req) => match produce::handle(b, req, version, &ctx).await {
                produce::Reply::Send(resp) => encode(out, correlation_id, api, version, &resp),
                produce::Reply::Nothing => Outcome::NoResponse,
                produce::Reply::Close(why) => Outcome::Close(why),
            },
            Err(e) => Outcome::Close(format!("malformed Produce v{version} request: {e}")),
        },
        ApiKey::Fetch => run!(FetchRequest, fetch::handle),
        ApiKey::ListOffsets => run!(ListOffsetsRequest, list_offsets::handle),
        ApiKey::OffsetForLeaderEpoch => {
            run!(OffsetForLeaderEpochRequest, offset_for_leader_epoch::handle)
        }
        ApiKey::CreateTopics => run!(CreateTopicsRequest, create_topics::handle),
        ApiKey::DeleteTopics => run!(DeleteTopicsRequest, delete_topics::handle),
        ApiKey::CreatePartitions => run!(CreatePartitionsRequest, create_partitions::handle),
        ApiKey::DeleteRecords => run!(DeleteRecordsRequest, delete_records::handle),
        ApiKey::DescribeConfigs => run!(DescribeConfigsRequest, describe_configs::handle),
        ApiKey::AlterConfigs => run!(AlterConfigsRequest, alter_configs::handle_alter),
        ApiKey::IncrementalAlterConfigs => run!(
            IncrementalAlterConfigsRequest,
            alter_configs::handle_incremental
        ),
        ApiKey::DescribeCluster => run!(DescribeClusterRequest, describe_cluster::handle),
        ApiKey::InitProducerId => run!(InitProducerIdRequest, init_producer_id::handle),
        ApiKey::FindCoordinator => run!(FindCoordinatorRequest, find_coordinator::handle),
        ApiKey::JoinGroup => run!(JoinGroupRequest, join_group::handle),
        ApiKey::SyncGroup => run!(SyncGroupRequest, sync_group::handle),
        ApiKey::Heartbeat => run!(HeartbeatRequest, heartbeat::handle),
        ApiKey::LeaveGroup => run!(LeaveGroupRequest, leave_group::handle),
        ApiKey::OffsetCommit => run!(OffsetCommitRequest, offset_commit::handle),
        ApiKey::OffsetFetch => run!(OffsetFetchRequest, offset_fetch::handle),
        ApiKey::ListGroups => run!(ListGroupsRequest, list_groups::handle),
        ApiKey::DescribeGroups => run!(DescribeGroupsRequest, describe_groups::handle),
        ApiKey::DeleteGroups => run!(DeleteGroupsRequest, delete_groups::handle),
        ApiKey::OffsetDelete => run!(OffsetDeleteRequest, offset_delete::handle),
        ApiKey::DescribeLogDirs => run!(DescribeLogDirsRequest, describe_log_dirs::handle),
        ApiKey::AlterPartitionReassignments => run!(
            AlterPartitionReassignmentsRequest,
            alter_partition_reassignments::handle
        ),
        ApiKey::ListPartitionReassignments => run!(
            ListPartitionReassignmentsRequest,
            list_partition_reassignments::handle
        ),
        ApiKey::ElectLeaders => run!(ElectLeadersRequest, elect_leaders::handle),
        other => Outcome::Close(format!("API {other:?} has no handler")),
    };
    b.metrics
        .request_latency
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
    outcome
}

/// Frames a response: size prefix, response header (version chosen by the crate), body.
fn encode<R: Encodable>(
    out: &mut BytesMut,
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &R,
) -> Outcome {
    out.clear();
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    if let Err(e) = header.encode(out, api.response_header_version(version)) {
        return Outcome::Close(format!("cannot encode {api:?} response header: {e}"));
    }
    if let Err(e) = body.encode(out, version) {
        tracing::error!(?api, version, error = %e, "response encoding failed: this is a bug");
        return Outcome::Close(format!("cannot encode {api:?} v{version} response: {e}"));
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Outcome::Respond
}

/// A `StrBytes` from anything string-like.
pub(crate) fn sb(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}
