//! DeleteGroups: only empty groups (NON_EMPTY_GROUP otherwise); offsets go with them.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::context::Broker;

/// Handles DeleteGroups.
pub async fn handle(
    b: &Broker,
    req: DeleteGroupsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let code = if ctx
                .authz
                .group(crate::metadata::acl::AclOperation::Delete, g.0.as_str())
            {
                b.groups.delete(g.0.as_str())
            } else {
                kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code()
            };
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
