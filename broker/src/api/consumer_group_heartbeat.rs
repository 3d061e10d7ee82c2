//! ConsumerGroupHeartbeat (KIP-848): joins, leaves, and keeps a member of a consumer group
//! alive, answering its epoch and, when it changed, its assignment. The protocol is
//! `group/consumer/`; this file only translates the wire form.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::sb;
use crate::context::Broker;
use crate::group::consumer::{self, Heartbeat};
use crate::metadata::acl::AclOperation;
use crate::repeated::Repeated;

/// Refusals of malformed heartbeats, logged once per interval per kind: a client that gets
/// INVALID_REQUEST treats it as fatal, so the reason must be findable on the broker too.
static INVALID: std::sync::LazyLock<Repeated> = std::sync::LazyLock::new(Repeated::default);

/// Most topics and partitions one heartbeat may report owning: a member owns at most what
/// the cluster has, and a request cannot make the coordinator walk more than this.
pub const MAX_OWNED_PARTITIONS: usize = 1_000_000;

/// Handles ConsumerGroupHeartbeat.
pub async fn handle(
    b: &Broker,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> ConsumerGroupHeartbeatResponse {
    let fail = |e: ResponseError, message: String| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message((!message.is_empty()).then(|| sb(message)))
            .with_member_epoch(-1)
    };
    let group = req.group_id.0.to_string();
    if !ctx.authz.group(AclOperation::Read, &group) {
        return fail(ResponseError::GroupAuthorizationFailed, String::new());
    }
    // Topics subscribed by name must be describable (Kafka's TOPIC_AUTHORIZATION_FAILED).
    if let Some(names) = &req.subscribed_topic_names {
        if names
            .iter()
            .any(|t| !ctx.authz.topic(AclOperation::Describe, t.0.as_str()))
        {
            return fail(ResponseError::TopicAuthorizationFailed, String::new());
        }
    }
    let owned = match req.topic_partitions {
        None => None,
        Some(list) => {
            let n: usize = list.iter().map(|t| t.partitions.len()).sum();
            if n > MAX_OWNED_PARTITIONS {
                return fail(
                    ResponseError::InvalidRequest,
                    format!("at most {MAX_OWNED_PARTITIONS} owned partitions may be reported"),
                );
            }
            let mut a = consumer::Assignment::new();
            for t in list {
                a.entry(t.topic_id)
                    .or_default()
                    .extend(t.partitions.iter().copied());
            }
            a.retain(|_, ps| !ps.is_empty());
            Some(a)
        }
    };
    let mut member_id = req.member_id.to_string();
    if version == 0 && member_id.is_empty() && req.member_epoch == 0 {
        // v0: the coordinator names new members (v1 clients name themselves, KIP-1082).
        member_id = uuid::Uuid::new_v4().to_string();
    }
    let hb = Heartbeat {
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|v| v.into_iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: if version >= 1 {
            req.subscribed_topic_regex.map(|s| s.to_string())
        } else {
            None
        },
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let interval = b.groups.consumer_settings().heartbeat_interval.as_millis() as i32;
    match b.groups.consumer_heartbeat(&group, hb) {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(sb(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(interval)
            .with_assignment(r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(t, ps)| {
                            TopicPartitions::default()
                                .with_topic_id(t)
                                .with_partitions(ps.into_iter().collect())
                        })
                        .collect(),
                )
            })),
        Err(r) => {
            if r.error == ResponseError::InvalidRequest {
                if let Some(left_out) = INVALID.check(&r.message) {
                    tracing::warn!(
                        group = %group,
                        member_epoch = req.member_epoch,
                        client = %ctx.client_id(),
                        left_out,
                        "ConsumerGroupHeartbeat refused: {}",
                        r.message
                    );
                }
            }
            fail(r.error, r.message)
        }
    }
}
