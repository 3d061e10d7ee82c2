//! ConsumerGroupDescribe (KIP-848): a consumer group's epochs, assignor and members, each
//! with its current and target assignment. A classic or unknown group is GROUP_ID_NOT_FOUND,
//! as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};

use super::sb;
use crate::context::Broker;
use crate::group::consumer;
use crate::metadata::acl::AclOperation;

/// Most groups one request may describe (each answer is built in memory).
pub const MAX_GROUPS_PER_REQUEST: usize = 10_000;

/// Member types of v1: classic (JoinGroup) or consumer (ConsumerGroupHeartbeat).
const MEMBER_TYPE_CLASSIC: i8 = 0;
const MEMBER_TYPE_CONSUMER: i8 = 1;

/// Handles ConsumerGroupDescribe.
pub async fn handle(
    b: &Broker,
    req: ConsumerGroupDescribeRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> ConsumerGroupDescribeResponse {
    let image = b.controller.image();
    let name_of = |id: uuid::Uuid| {
        image
            .topic_by_id(id)
            .map(|t| t.name.clone())
            .unwrap_or_default()
    };
    let assignment = |a: &consumer::Assignment| {
        Assignment::default().with_topic_partitions(
            a.iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(*t)
                        .with_topic_name(TopicName(sb(name_of(*t))))
                        .with_partitions(ps.iter().copied().collect())
                })
                .collect(),
        )
    };
    let groups = req
        .group_ids
        .into_iter()
        .take(MAX_GROUPS_PER_REQUEST)
        .map(|gid| {
            let out = DescribedGroup::default()
                .with_group_id(gid.clone())
                .with_authorized_operations(if req.include_authorized_operations {
                    super::describe_groups::GROUP_OPERATIONS
                } else {
                    i32::MIN
                });
            if !ctx.authz.group(AclOperation::Describe, gid.0.as_str()) {
                return out.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            match b.groups.consumer_describe(gid.0.as_str()) {
                Err(r) => out
                    .with_error_code(r.error.code())
                    .with_error_message((!r.message.is_empty()).then(|| sb(r.message))),
                Ok(g) => out
                    .with_group_state(sb(g.state))
                    .with_group_epoch(g.group_epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(sb(g.assignor))
                    .with_members(
                        g.members
                            .iter()
                            .map(|d| {
                                let m = &d.member;
                                let member = Member::default()
                                    .with_member_id(sb(m.id.clone()))
                                    .with_instance_id(m.instance_id.clone().map(sb))
                                    .with_rack_id(m.rack_id.clone().map(sb))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(sb(m.client_id.clone()))
                                    .with_client_host(sb(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .iter()
                                            .map(|n| TopicName(sb(n.clone())))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.clone().map(sb),
                                    )
                                    .with_assignment(assignment(&m.assigned))
                                    .with_target_assignment(assignment(&d.target));
                                if version >= 1 {
                                    member.with_member_type(if m.classic.is_some() {
                                        MEMBER_TYPE_CLASSIC
                                    } else {
                                        MEMBER_TYPE_CONSUMER
                                    })
                                } else {
                                    member
                                }
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
