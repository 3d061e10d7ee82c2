//! What CreateAcls, DescribeAcls and DeleteAcls share: wire values to and from
//! [`AclBinding`]s and filters, and the SECURITY_DISABLED answer when no authorizer is
//! configured (Kafka's).

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use super::sb;
use crate::metadata::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

/// The most creations or filters one request may carry.
pub const MAX_PER_REQUEST: usize = 1000;
/// Kafka's INVALID_REQUEST, the answer to a malformed binding or filter.
pub const INVALID_REQUEST: i16 = ResponseError::InvalidRequest.code();

/// What every ACL API checks first, as Kafka does: an authorizer is configured
/// (SECURITY_DISABLED otherwise) and the caller may do `op` on the cluster
/// (CLUSTER_AUTHORIZATION_FAILED). `Err` is the code and message to answer with.
pub fn admit(ctx: &super::Ctx<'_>, op: AclOperation, api: &str) -> Result<(), (i16, String)> {
    if !ctx.authz.enabled() {
        return Err((
            ResponseError::SecurityDisabled.code(),
            "No Authorizer is configured on the broker (set authorizer.class.name)".into(),
        ));
    }
    if !ctx.authz.cluster(op) {
        return Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            format!("{api} needs {} on the cluster", op.name()),
        ));
    }
    Ok(())
}

/// The wire fields of a binding or a filter.
pub struct Wire<'a> {
    /// `resource_type`.
    pub resource_type: i8,
    /// `resource_name`.
    pub resource_name: Option<&'a StrBytes>,
    /// `pattern_type`.
    pub pattern_type: i8,
    /// `principal`.
    pub principal: Option<&'a StrBytes>,
    /// `host`.
    pub host: Option<&'a StrBytes>,
    /// `operation`.
    pub operation: i8,
    /// `permission_type`.
    pub permission: i8,
}

impl Wire<'_> {
    /// A binding to create (validated).
    pub fn binding(&self) -> Result<AclBinding, String> {
        let b = AclBinding {
            resource_type: ResourceType::from_code(self.resource_type)
                .unwrap_or(ResourceType::Unknown),
            resource_name: self
                .resource_name
                .map(|s| s.to_string())
                .unwrap_or_default(),
            pattern_type: PatternType::from_code(self.pattern_type).unwrap_or(PatternType::Unknown),
            principal: self.principal.map(|s| s.to_string()).unwrap_or_default(),
            host: self.host.map(|s| s.to_string()).unwrap_or_default(),
            operation: AclOperation::from_code(self.operation).unwrap_or(AclOperation::Unknown),
            permission: AclPermissionType::from_code(self.permission)
                .unwrap_or(AclPermissionType::Unknown),
        };
        b.validate()?;
        Ok(b)
    }

    /// A filter (validated).
    pub fn filter(&self) -> Result<AclBindingFilter, String> {
        let f = AclBindingFilter {
            resource_type: ResourceType::from_code(self.resource_type)
                .unwrap_or(ResourceType::Unknown),
            resource_name: self.resource_name.map(|s| s.to_string()),
            pattern_type: PatternType::from_code(self.pattern_type).unwrap_or(PatternType::Unknown),
            principal: self.principal.map(|s| s.to_string()),
            host: self.host.map(|s| s.to_string()),
            operation: AclOperation::from_code(self.operation).unwrap_or(AclOperation::Unknown),
            permission: AclPermissionType::from_code(self.permission)
                .unwrap_or(AclPermissionType::Unknown),
        };
        f.validate()?;
        Ok(f)
    }
}

/// A binding's strings for a response.
pub fn strings(b: &AclBinding) -> (StrBytes, StrBytes, StrBytes) {
    (
        sb(b.resource_name.clone()),
        sb(b.principal.clone()),
        sb(b.host.clone()),
    )
}
