//! Request dispatch: header decoding, version checks, one handler module per Kafka API, and
//! response framing. The wire format is entirely `kafka-protocol`'s.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod auto_create;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod decode;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod raft_voters;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod throttle;
pub mod txn_offset_commit;
pub mod versions;
pub mod write_txn_markers;

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;

use std::sync::Arc;

use crate::context::Broker;
use crate::security::session::Session;

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
    /// The authenticated principal (`User:ANONYMOUS` on PLAINTEXT listeners).
    pub principal: &'a crate::security::Principal,
    /// The listener the request came in on: Metadata and FindCoordinator answer with its
    /// endpoints.
    pub listener: &'a str,
    /// The request's ACL checks (all allowed without an authorizer).
    pub authz: crate::security::authorizer::Authz<'a>,
}

impl Ctx<'_> {
    /// Who the request's client quotas measure: the principal's name and the client id.
    pub fn quota_client(&self) -> crate::quota::ClientRef<'_> {
        crate::quota::ClientRef {
            user: self.principal.name(),
            client_id: self.header.client_id.as_ref().map_or("", |c| c.as_str()),
        }
    }

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
    /// Send the bytes in the output buffer, then close (a failed authentication).
    RespondThenClose(String),
}

/// Decodes ([`decode::decode`]) and handles one frame, writing the size-prefixed response
/// into `out` and into `throttle` how long the connection must then wait (client quotas,
/// `throttle.rs`).
pub async fn handle_frame(
    d: &Dispatcher,
    session: &mut Session,
    frame: Bytes,
    out: &mut BytesMut,
    throttle: &mut throttle::Throttle,
) -> Outcome {
    *throttle = throttle::Throttle::default();
    let frame_len = frame.len();
    if session.expects_raw_token() {
        return sasl_authenticate::raw_token(&d.broker, session, &frame, out).await;
    }
    let (api, version, header, body) = match decode::decode(frame) {
        Ok(decode::Decoded::Request {
            api,
            version,
            header,
            body,
        }) => (api, version, header, body),
        // KIP-511: a client newer than us gets a v0 answer listing what we do support.
        Ok(decode::Decoded::ApiVersionsTooNew { correlation_id }) => {
            return encode(
                out,
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &api_versions::unsupported(),
            )
        }
        Err(decode::Refused(why)) => return Outcome::Close(why),
    };
    if let Err(why) = session.admit(api, Instant::now()) {
        return Outcome::Close(why);
    }
    let correlation_id = header.correlation_id;
    // SASL requests change the session; everything else only reads it.
    match body {
        RequestKind::SaslHandshake(req) => {
            let (resp, close) = sasl_handshake::handle(session, req, version);
            return match encode(out, correlation_id, api, version, &resp) {
                Outcome::Respond => close.map_or(Outcome::Respond, Outcome::RespondThenClose),
                other => other,
            };
        }
        RequestKind::SaslAuthenticate(req) => {
            let (resp, close) = sasl_authenticate::handle(&d.broker, session, req).await;
            return match encode(out, correlation_id, api, version, &resp) {
                Outcome::Respond => close.map_or(Outcome::Respond, Outcome::RespondThenClose),
                other => other,
            };
        }
        _ => {}
    }
    let principal = session.principal();
    let authz = match &d.broker.authorizer {
        Some(a) => a.for_request(
            &d.broker.controller.image(),
            principal.as_str(),
            &session.acl_host,
        ),
        None => crate::security::authorizer::Authz::open(principal.as_str()),
    };
    let ctx = Ctx {
        header: &header,
        peer: session.peer,
        principal,
        listener: &session.listener.name,
        authz,
    };
    let b = d.broker.as_ref();
    let started = Instant::now();
    let who = throttle::Who {
        client: ctx.quota_client(),
        started,
        exempt: api == ApiKey::WriteTxnMarkers
            || (api == ApiKey::AddPartitionsToTxn && version >= 4),
    };
    let name = versions::name(api);
    b.metrics
        .requests
        .with_label_values(&[name, &version.to_string()])
        .inc();
    macro_rules! reply {
        ($resp:expr) => {{
            let mut resp = $resp;
            *throttle = throttle::finish(b, api, &mut resp, std::time::Duration::ZERO, &who);
            encode(out, correlation_id, api, version, &resp)
        }};
    }
    use RequestKind as R;
    let outcome = match body {
        R::ApiVersions(req) => reply!(api_versions::handle(b, req, version, &ctx).await),
        R::Metadata(req) => {
            reply!(metadata::handle(b, &d.fenced_grace, req, version, &ctx).await)
        }
        R::Produce(req) => match produce::handle(b, req, version, &ctx).await {
            produce::Reply::Send(mut resp) => {
                let own = throttle::produce(b, frame_len, &who);
                *throttle = throttle::finish(b, api, &mut resp, own, &who);
                encode(out, correlation_id, api, version, &resp)
            }
            produce::Reply::Nothing => {
                // acks=0: nothing to say the throttle in; the connection is muted (Kafka).
                let own = throttle::produce(b, frame_len, &who);
                let mut none = ProduceResponse::default();
                *throttle = throttle::finish(b, api, &mut none, own, &who);
                Outcome::NoResponse
            }
            produce::Reply::Close(why) => Outcome::Close(why),
        },
        R::Fetch(mut req) => {
            let who = throttle::Who {
                exempt: who.exempt || throttle::is_follower(&req, version),
                ..who
            };
            throttle::cap_fetch(b, &mut req, version, &who);
            let mut resp = fetch::handle(b, req, version, &ctx).await;
            let own = throttle::fetch(b, &mut resp, &who);
            *throttle = throttle::finish(b, api, &mut resp, own, &who);
            encode(out, correlation_id, api, version, &resp)
        }
        R::ListOffsets(req) => reply!(list_offsets::handle(b, req, version, &ctx).await),
        R::OffsetForLeaderEpoch(req) => {
            reply!(offset_for_leader_epoch::handle(b, req, version, &ctx).await)
        }
        R::CreateTopics(req) => reply!(create_topics::handle(b, req, version, &ctx).await),
        R::DeleteTopics(req) => reply!(delete_topics::handle(b, req, version, &ctx).await),
        R::CreatePartitions(req) => {
            reply!(create_partitions::handle(b, req, version, &ctx).await)
        }
        R::DeleteRecords(req) => reply!(delete_records::handle(b, req, version, &ctx).await),
        R::DescribeConfigs(req) => {
            reply!(describe_configs::handle(b, req, version, &ctx).await)
        }
        R::AlterConfigs(req) => reply!(alter_configs::handle_alter(b, req, version, &ctx).await),
        R::IncrementalAlterConfigs(req) => {
            reply!(alter_configs::handle_incremental(b, req, version, &ctx).await)
        }
        R::DescribeCluster(req) => {
            reply!(describe_cluster::handle(b, req, version, &ctx).await)
        }
        R::InitProducerId(req) => reply!(init_producer_id::handle(b, req, version, &ctx).await),
        R::AddPartitionsToTxn(req) => {
            reply!(add_partitions_to_txn::handle(b, req, version, &ctx).await)
        }
        R::AddOffsetsToTxn(req) => {
            reply!(add_offsets_to_txn::handle(b, req, version, &ctx).await)
        }
        R::EndTxn(req) => reply!(end_txn::handle(b, req, version, &ctx).await),
        R::WriteTxnMarkers(req) => {
            reply!(write_txn_markers::handle(b, req, version, &ctx).await)
        }
        R::FindCoordinator(req) => {
            reply!(find_coordinator::handle(b, req, version, &ctx).await)
        }
        R::JoinGroup(req) => reply!(join_group::handle(b, req, version, &ctx).await),
        R::SyncGroup(req) => reply!(sync_group::handle(b, req, version, &ctx).await),
        R::Heartbeat(req) => reply!(heartbeat::handle(b, req, version, &ctx).await),
        R::LeaveGroup(req) => reply!(leave_group::handle(b, req, version, &ctx).await),
        R::OffsetCommit(req) => reply!(offset_commit::handle(b, req, version, &ctx).await),
        R::OffsetFetch(req) => reply!(offset_fetch::handle(b, req, version, &ctx).await),
        R::TxnOffsetCommit(req) => {
            reply!(txn_offset_commit::handle(b, req, version, &ctx).await)
        }
        R::ListGroups(req) => reply!(list_groups::handle(b, req, version, &ctx).await),
        R::DescribeGroups(req) => reply!(describe_groups::handle(b, req, version, &ctx).await),
        R::ConsumerGroupHeartbeat(req) => {
            reply!(consumer_group_heartbeat::handle(b, req, version, &ctx).await)
        }
        R::ConsumerGroupDescribe(req) => {
            reply!(consumer_group_describe::handle(b, req, version, &ctx).await)
        }
        R::DeleteGroups(req) => reply!(delete_groups::handle(b, req, version, &ctx).await),
        R::OffsetDelete(req) => reply!(offset_delete::handle(b, req, version, &ctx).await),
        R::DescribeLogDirs(req) => {
            reply!(describe_log_dirs::handle(b, req, version, &ctx).await)
        }
        R::AlterPartitionReassignments(req) => {
            reply!(alter_partition_reassignments::handle(b, req, version, &ctx).await)
        }
        R::ListPartitionReassignments(req) => {
            reply!(list_partition_reassignments::handle(b, req, version, &ctx).await)
        }
        R::ElectLeaders(req) => reply!(elect_leaders::handle(b, req, version, &ctx).await),
        R::CreateAcls(req) => reply!(create_acls::handle(b, req, version, &ctx).await),
        R::DescribeAcls(req) => reply!(describe_acls::handle(b, req, version, &ctx).await),
        R::DeleteAcls(req) => reply!(delete_acls::handle(b, req, version, &ctx).await),
        R::AlterUserScramCredentials(req) => {
            reply!(alter_user_scram_credentials::handle(b, req, version, &ctx).await)
        }
        R::DescribeUserScramCredentials(req) => {
            reply!(describe_user_scram_credentials::handle(b, req, version, &ctx).await)
        }
        R::DescribeTransactions(req) => {
            reply!(describe_transactions::handle(b, req, version, &ctx).await)
        }
        R::ListTransactions(req) => reply!(list_transactions::handle(b, req, version, &ctx).await),
        R::DescribeTopicPartitions(req) => {
            reply!(describe_topic_partitions::handle(b, req, version, &ctx).await)
        }
        R::DescribeQuorum(req) => reply!(describe_quorum::handle(b, req, version, &ctx).await),
        R::AddRaftVoter(req) => reply!(raft_voters::add(b, req, version, &ctx).await),
        R::RemoveRaftVoter(req) => reply!(raft_voters::remove(b, req, version, &ctx).await),
        R::DescribeClientQuotas(req) => {
            reply!(describe_client_quotas::handle(b, req, version, &ctx).await)
        }
        R::AlterClientQuotas(req) => {
            reply!(alter_client_quotas::handle(b, req, version, &ctx).await)
        }
        R::DescribeProducers(req) => {
            reply!(describe_producers::handle(b, req, version, &ctx).await)
        }
        // `versions::supported` admits only the APIs above.
        _ => Outcome::Close(format!("API {api:?} has no handler")),
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
