//! What CreateAcls, DescribeAcls and DeleteAcls share: wire values to and from
//! [`AclBinding`]s and filters, and the SECURITY_DISABLED answer when no authorizer is
//! configured (Kafka's).

use kafka_protocol::protocol::StrBytes;

use super::sb;
use crate::metadata::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

/// Kafka's SECURITY_DISABLED.
pub const SECURITY_DISABLED: i16 = 54;
/// The message that goes with it.
pub const NO_AUTHORIZER: &str =
    "No Authorizer is configured on the broker (set authorizer.class.name)";
/// The most creations or filters one request may carry.
pub const MAX_PER_REQUEST: usize = 1000;

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
