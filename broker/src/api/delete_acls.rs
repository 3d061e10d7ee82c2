//! DeleteAcls: ALTER on the cluster; each filter's matching bindings are removed in one
//! metadata change and listed in its result.

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use super::acls::{admit, strings, Wire, INVALID_REQUEST, MAX_PER_REQUEST};
use super::sb;
use crate::context::Broker;
use crate::metadata::acl::{AclBinding, AclOperation};

/// Handles DeleteAcls.
pub async fn handle(
    b: &Broker,
    req: DeleteAclsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DeleteAclsResponse {
    let fail_all = |code: i16, msg: &str| {
        DeleteAclsResponse::default().with_filter_results(
            req.filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(sb(msg)))
                })
                .collect(),
        )
    };
    if let Err((code, why)) = admit(ctx, AclOperation::Alter, "DeleteAcls") {
        return fail_all(code, &why);
    }
    if req.filters.len() > MAX_PER_REQUEST {
        return fail_all(
            INVALID_REQUEST,
            &format!("at most {MAX_PER_REQUEST} filters per request"),
        );
    }
    let image = b.controller.image();
    let per_filter: Vec<Result<Vec<AclBinding>, String>> = req
        .filters
        .iter()
        .map(|f| {
            let f = Wire {
                resource_type: f.resource_type_filter,
                resource_name: f.resource_name_filter.as_ref(),
                pattern_type: f.pattern_type_filter,
                principal: f.principal_filter.as_ref(),
                host: f.host_filter.as_ref(),
                operation: f.operation,
                permission: f.permission_type,
            }
            .filter()?;
            Ok(image
                .acls
                .iter()
                .filter(|a| f.matches(a))
                .cloned()
                .collect())
        })
        .collect();
    let mut doomed: Vec<AclBinding> = per_filter
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    doomed.sort();
    doomed.dedup();
    let committed = if doomed.is_empty() {
        Ok(())
    } else {
        b.controller.delete_acls(doomed.clone()).await
    };
    if committed.is_ok() && !doomed.is_empty() {
        tracing::info!(principal = %ctx.principal, acls = ?doomed, "ACLs deleted");
    }
    DeleteAclsResponse::default().with_filter_results(
        per_filter
            .into_iter()
            .map(|r| match (r, &committed) {
                (Err(why), _) => DeleteAclsFilterResult::default()
                    .with_error_code(INVALID_REQUEST)
                    .with_error_message(Some(sb(why))),
                (Ok(_), Err(e)) => DeleteAclsFilterResult::default()
                    .with_error_code(e.code())
                    .with_error_message(Some(sb(e.to_string()))),
                (Ok(matched), Ok(())) => DeleteAclsFilterResult::default().with_matching_acls(
                    matched
                        .iter()
                        .map(|a| {
                            let (name, principal, host) = strings(a);
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(a.resource_type.code())
                                .with_resource_name(name)
                                .with_pattern_type(a.pattern_type.code())
                                .with_principal(principal)
                                .with_host(host)
                                .with_operation(a.operation.code())
                                .with_permission_type(a.permission.code())
                        })
                        .collect(),
                ),
            })
            .collect(),
    )
}
