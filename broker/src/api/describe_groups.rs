//! DescribeGroups: state, protocol, members with their metadata and assignments.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::sb;
use crate::context::Broker;

/// Handles DescribeGroups.
pub async fn handle(
    b: &Broker,
    req: DescribeGroupsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|gid| {
            let out = DescribedGroup::default().with_group_id(gid.clone());
            let out = if version >= 3 {
                out.with_authorized_operations(if req.include_authorized_operations {
                    GROUP_OPERATIONS
                } else {
                    i32::MIN
                })
            } else {
                out
            };
            if !ctx
                .authz
                .group(crate::metadata::acl::AclOperation::Describe, gid.0.as_str())
            {
                return out.with_error_code(
                    kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
                );
            }
            match b.groups.describe(gid.0.as_str()) {
                Ok(g) => {
                    // Like Kafka's GroupMetadata.summary: protocol, metadata and assignments
                    // only for a Stable group (mid-rebalance they are not settled).
                    let stable = g.state == crate::group::state::GroupState::Stable.name();
                    let members = g
                        .members
                        .into_iter()
                        .map(|(id, instance, client, host, meta, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(sb(id))
                                .with_group_instance_id(instance.filter(|_| version >= 4).map(sb))
                                .with_client_id(sb(client))
                                .with_client_host(sb(host))
                                .with_member_metadata(if stable {
                                    meta
                                } else {
                                    Default::default()
                                })
                                .with_member_assignment(if stable {
                                    assignment
                                } else {
                                    Default::default()
                                })
                        })
                        .collect();
                    out.with_group_state(sb(g.state))
                        .with_protocol_type(sb(g.protocol_type))
                        .with_protocol_data(sb(if stable { g.protocol } else { String::new() }))
                        .with_members(members)
                }
                // A consumer group (KIP-848): Kafka 4 answers v6 with the error and a message
                // and older versions as for a group it does not know.
                Err(kafka_protocol::error::ResponseError::GroupIdNotFound) if version >= 6 => out
                    .with_error_code(kafka_protocol::error::ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!(
                        "Group {} is not a classic group.",
                        gid.0.as_str()
                    ))))
                    .with_group_state(sb(crate::group::state::GroupState::Dead.name())),
                Err(kafka_protocol::error::ResponseError::GroupIdNotFound) => {
                    out.with_group_state(sb(crate::group::state::GroupState::Dead.name()))
                }
                Err(e) => out.with_error_code(e.code()),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Operations a group supports with no authorizer: READ 3, DELETE 6, DESCRIBE 8.
pub(crate) const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);
