//! CreateAcls: ALTER on the cluster; each creation validated as Kafka does (INVALID_REQUEST
//! with the reason otherwise), the valid ones committed to the metadata log together.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use super::acls::{admit, Wire, INVALID_REQUEST, MAX_PER_REQUEST};
use super::sb;
use crate::context::Broker;
use crate::metadata::acl::AclOperation;

/// Handles CreateAcls.
pub async fn handle(
    b: &Broker,
    req: CreateAclsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> CreateAclsResponse {
    let fail_all = |code: i16, msg: &str| {
        CreateAclsResponse::default().with_results(
            req.creations
                .iter()
                .map(|_| {
                    AclCreationResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(sb(msg)))
                })
                .collect(),
        )
    };
    if let Err((code, why)) = admit(ctx, AclOperation::Alter, "CreateAcls") {
        return fail_all(code, &why);
    }
    if req.creations.len() > MAX_PER_REQUEST {
        return fail_all(
            INVALID_REQUEST,
            &format!("at most {MAX_PER_REQUEST} ACLs per request"),
        );
    }
    let checked: Vec<Result<_, String>> = req
        .creations
        .iter()
        .map(|c| {
            Wire {
                resource_type: c.resource_type,
                resource_name: Some(&c.resource_name),
                pattern_type: c.resource_pattern_type,
                principal: Some(&c.principal),
                host: Some(&c.host),
                operation: c.operation,
                permission: c.permission_type,
            }
            .binding()
        })
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let committed = if valid.is_empty() {
        Ok(())
    } else {
        b.controller.create_acls(valid.clone()).await
    };
    if committed.is_ok() && !valid.is_empty() {
        tracing::info!(principal = %ctx.principal, acls = ?valid, "ACLs created");
    }
    CreateAclsResponse::default().with_results(
        checked
            .into_iter()
            .map(|r| match (r, &committed) {
                (Err(why), _) => AclCreationResult::default()
                    .with_error_code(INVALID_REQUEST)
                    .with_error_message(Some(sb(why))),
                (Ok(_), Ok(())) => AclCreationResult::default(),
                (Ok(_), Err(e)) => AclCreationResult::default()
                    .with_error_code(e.code())
                    .with_error_message(Some(sb(e.to_string()))),
            })
            .collect::<Vec<_>>(),
    )
}
