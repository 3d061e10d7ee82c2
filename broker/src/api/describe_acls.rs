//! DescribeAcls: DESCRIBE on the cluster; the bindings a filter selects, grouped by resource
//! pattern as Kafka answers.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::acls::{admit, strings, Wire, INVALID_REQUEST};
use super::sb;
use crate::context::Broker;
use crate::metadata::acl::AclOperation;

/// Handles DescribeAcls.
pub async fn handle(
    b: &Broker,
    req: DescribeAclsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeAclsResponse {
    let fail = |code: i16, msg: &str| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(sb(msg)))
    };
    if let Err((code, why)) = admit(ctx, AclOperation::Describe, "DescribeAcls") {
        return fail(code, &why);
    }
    let filter = match (Wire {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.as_ref(),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.as_ref(),
        host: req.host_filter.as_ref(),
        operation: req.operation,
        permission: req.permission_type,
    })
    .filter()
    {
        Ok(f) => f,
        Err(why) => return fail(INVALID_REQUEST, &why),
    };
    let image = b.controller.image();
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.iter().filter(|a| filter.matches(a)) {
        let (_, principal, host) = strings(acl);
        by_resource
            .entry((
                acl.resource_type.code(),
                acl.resource_name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(principal)
                    .with_host(host)
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        by_resource
            .into_iter()
            .map(|((rt, name, pt), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(sb(name))
                    .with_pattern_type(pt)
                    .with_acls(acls)
            })
            .collect(),
    )
}
