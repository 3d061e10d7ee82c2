//! ListGroups, with the states (v4+) and types (v5+) filters.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::sb;
use crate::context::Broker;

/// Handles ListGroups.
pub async fn handle(
    b: &Broker,
    req: ListGroupsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> ListGroupsResponse {
    // DESCRIBE on the cluster lists every group; otherwise the groups one may describe.
    let all = ctx
        .authz
        .cluster(crate::metadata::acl::AclOperation::Describe);
    let states: Vec<String> = req
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = req
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let groups = b
        .groups
        .list()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_ascii_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .filter(|g| {
            all || ctx
                .authz
                .group(crate::metadata::acl::AclOperation::Describe, &g.id)
        })
        .map(|g| {
            let l = ListedGroup::default()
                .with_group_id(GroupId(sb(g.id)))
                .with_protocol_type(sb(g.protocol_type));
            let l = if version >= 4 {
                l.with_group_state(sb(g.state))
            } else {
                l
            };
            if version >= 5 {
                l.with_group_type(sb(g.group_type))
            } else {
                l
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
