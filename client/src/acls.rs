//! ACLs as methods on [`Cluster`] (CreateAcls, DescribeAcls, DeleteAcls), with Kafka's wire
//! codes; the codes' meaning lives with the broker's authorizer, this side only carries them.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{ClientError, Cluster};

/// One ACL as the wire carries it (Kafka's codes for the enums).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Acl {
    /// Resource type code (2 topic, 3 group, 4 cluster, 5 transactional id).
    pub resource_type: i8,
    /// Resource name or prefix.
    pub resource_name: String,
    /// Pattern type code (3 literal, 4 prefixed).
    pub pattern_type: i8,
    /// `User:alice`.
    pub principal: String,
    /// Host or `*`.
    pub host: String,
    /// Operation code.
    pub operation: i8,
    /// Permission code (2 deny, 3 allow).
    pub permission: i8,
}

/// A filter: `None` strings match anything; codes 1 (ANY) match anything.
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    /// Resource type code, 1 for any.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Pattern type code (1 any, 2 match, 3 literal, 4 prefixed).
    pub pattern_type: i8,
    /// Principal.
    pub principal: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Operation code, 1 for any.
    pub operation: i8,
    /// Permission code, 1 for any.
    pub permission: i8,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl Cluster {
    /// Creates ACLs; one result per ACL, in order.
    pub async fn create_acls(
        &self,
        acls: &[Acl],
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let req = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type)
                        .with_resource_name(s(&a.resource_name))
                        .with_resource_pattern_type(a.pattern_type)
                        .with_principal(s(&a.principal))
                        .with_host(s(&a.host))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission)
                })
                .collect(),
        );
        let resp = self.send_to_controller(req).await?;
        Ok(resp
            .results
            .iter()
            .map(|r| ClientError::check(r.error_code, r.error_message.as_deref()))
            .collect())
    }

    /// The ACLs a filter selects.
    pub async fn describe_acls(&self, f: &AclFilter) -> Result<Vec<Acl>, ClientError> {
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type)
            .with_resource_name_filter(f.resource_name.as_deref().map(s))
            .with_pattern_type_filter(f.pattern_type)
            .with_principal_filter(f.principal.as_deref().map(s))
            .with_host_filter(f.host.as_deref().map(s))
            .with_operation(f.operation)
            .with_permission_type(f.permission);
        let resp = self.send_to_controller(req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        Ok(resp
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(move |a| Acl {
                    resource_type: r.resource_type,
                    resource_name: r.resource_name.to_string(),
                    pattern_type: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect())
    }

    /// Deletes the ACLs each filter selects; per filter, the ACLs removed.
    pub async fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Result<Vec<Acl>, ClientError>>, ClientError> {
        let req = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type)
                        .with_resource_name_filter(f.resource_name.as_deref().map(s))
                        .with_pattern_type_filter(f.pattern_type)
                        .with_principal_filter(f.principal.as_deref().map(s))
                        .with_host_filter(f.host.as_deref().map(s))
                        .with_operation(f.operation)
                        .with_permission_type(f.permission)
                })
                .collect(),
        );
        let resp = self.send_to_controller(req).await?;
        Ok(resp
            .filter_results
            .iter()
            .map(|r| {
                ClientError::check(r.error_code, r.error_message.as_deref())?;
                Ok(r.matching_acls
                    .iter()
                    .map(|a| Acl {
                        resource_type: a.resource_type,
                        resource_name: a.resource_name.to_string(),
                        pattern_type: a.pattern_type,
                        principal: a.principal.to_string(),
                        host: a.host.to_string(),
                        operation: a.operation,
                        permission: a.permission_type,
                    })
                    .collect())
            })
            .collect())
    }
}
