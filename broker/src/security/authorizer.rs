//! The node's authorizer: `authorizer.class.name`'s settings plus an index of the current
//! image's ACLs ([`crate::metadata::acl`]) and the decisions made from it
//! ([`super::decision_cache`]), both rebuilt only when the ACLs change (the image shares one
//! ACL set between versions, so "changed" is a pointer comparison). Requests take an
//! [`Authz`]: the index and cache of the moment, the principal and the client's host.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::config::security::AuthorizerConfig;
use crate::metadata::acl::{
    AclBinding, AclIndex, AclOperation, AuthorizerSettings, ResourceType, CLUSTER_NAME,
};
use crate::metadata::MetadataImage;

use super::decision_cache::{DecisionCache, Question};

/// One ACL set's index and the decisions already made from it: they live and die together.
pub struct Decisions {
    index: AclIndex,
    cache: DecisionCache,
}

type Indexed = (Arc<BTreeSet<AclBinding>>, Arc<Decisions>);

/// ACL checks for every request, when an authorizer is configured.
pub struct Authorizer {
    settings: AuthorizerSettings,
    current: RwLock<Option<Indexed>>,
    /// False only for benchmarks: every decision walks the index.
    cached: bool,
}

impl Authorizer {
    /// The authorizer `authorizer.class.name` and its keys describe.
    pub fn new(cfg: &AuthorizerConfig) -> Authorizer {
        Authorizer {
            settings: AuthorizerSettings::from(cfg),
            current: RwLock::new(None),
            cached: true,
        }
    }

    /// The same authorizer without the decision cache, so a benchmark can compare the two
    /// through the same per-request path.
    pub fn uncached(cfg: &AuthorizerConfig) -> Authorizer {
        Authorizer {
            cached: false,
            ..Authorizer::new(cfg)
        }
    }

    /// The index (and decision cache) of `image`'s ACLs.
    fn index(&self, image: &MetadataImage) -> Arc<Decisions> {
        if let Some((acls, ix)) = &*self.current.read().unwrap_or_else(|p| p.into_inner()) {
            if Arc::ptr_eq(acls, &image.acls) {
                return ix.clone();
            }
        }
        let ix = Arc::new(Decisions {
            index: AclIndex::new(image.acls.iter()),
            cache: DecisionCache::default(),
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) =
            Some((image.acls.clone(), ix.clone()));
        ix
    }

    /// The checks of one request by `principal` from `host`, the client's address as ACLs
    /// name hosts ([`crate::metadata::acl::host_string`]; a session makes it once).
    pub fn for_request<'a>(
        &'a self,
        image: &MetadataImage,
        principal: &'a str,
        host: &'a str,
    ) -> Authz<'a> {
        Authz {
            check: Some((self, self.index(image))),
            principal,
            host,
        }
    }
}

/// One request's authorization checks; everything is allowed without an authorizer.
pub struct Authz<'a> {
    check: Option<(&'a Authorizer, Arc<Decisions>)>,
    principal: &'a str,
    host: &'a str,
}

impl<'a> Authz<'a> {
    /// No authorizer configured: everything is allowed (Kafka's default).
    pub fn open(principal: &'a str) -> Authz<'a> {
        Authz {
            check: None,
            principal,
            host: "",
        }
    }

    /// Whether ACLs are checked at all (ACL APIs answer SECURITY_DISABLED otherwise).
    pub fn enabled(&self) -> bool {
        self.check.is_some()
    }

    /// May the principal do `op` on resource `name` of type `rt`?
    pub fn allowed(&self, op: AclOperation, rt: ResourceType, name: &str) -> bool {
        match &self.check {
            None => true,
            Some((a, d)) if !a.cached => {
                d.index
                    .authorize(&a.settings, self.principal, self.host, op, rt, name)
            }
            Some((a, d)) => d.cache.get_or_decide(
                Question {
                    principal: self.principal,
                    host: self.host,
                    op,
                    rt,
                    name,
                },
                || {
                    d.index
                        .authorize(&a.settings, self.principal, self.host, op, rt, name)
                },
            ),
        }
    }

    /// `op` on the cluster resource.
    pub fn cluster(&self, op: AclOperation) -> bool {
        self.allowed(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// `op` on a topic.
    pub fn topic(&self, op: AclOperation, name: &str) -> bool {
        self.allowed(op, ResourceType::Topic, name)
    }

    /// `op` on a consumer group.
    pub fn group(&self, op: AclOperation, name: &str) -> bool {
        self.allowed(op, ResourceType::Group, name)
    }

    /// `op` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource by its wire type: the
    /// topic for topics, the cluster for brokers and broker loggers (Kafka's rule).
    pub fn config_resource(
        &self,
        op: AclOperation,
        resource_type: i8,
        name: &str,
    ) -> Result<(), crate::error::KafkaError> {
        use crate::error::KafkaError;
        if resource_type == rill_client::resource::RESOURCE_TOPIC {
            if self.topic(op, name) {
                return Ok(());
            }
            return Err(KafkaError::TopicAuthorizationFailed(format!(
                "{} may not {} topic {name}",
                self.principal,
                op.name()
            )));
        }
        if self.cluster(op) {
            Ok(())
        } else {
            Err(KafkaError::ClusterAuthorizationFailed(format!(
                "{} needs {} on the cluster",
                self.principal,
                op.name()
            )))
        }
    }

    /// KIP-679: `op` on some resource of type `rt`.
    pub fn any(&self, op: AclOperation, rt: ResourceType) -> bool {
        match &self.check {
            None => true,
            Some((a, d)) => d
                .index
                .authorize_any(&a.settings, self.principal, self.host, op, rt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::acl::{AclPermissionType, PatternType};

    fn image(acls: &[AclBinding]) -> MetadataImage {
        MetadataImage {
            acls: Arc::new(acls.iter().cloned().collect()),
            ..MetadataImage::default()
        }
    }

    fn write_acl(host: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: host.into(),
            operation: AclOperation::Write,
            permission: AclPermissionType::Allow,
        }
    }

    fn may_write(a: &Authorizer, image: &MetadataImage, host: &str) -> bool {
        let host = crate::metadata::acl::host_string(host.parse().unwrap());
        a.for_request(image, "User:alice", &host)
            .topic(AclOperation::Write, "orders")
    }

    /// A cached decision never outlives the ACLs it came from.
    #[test]
    fn decisions_follow_acl_changes() {
        let cfg = AuthorizerConfig {
            super_users: vec![],
            allow_everyone_if_no_acl_found: false,
        };
        for a in [Authorizer::new(&cfg), Authorizer::uncached(&cfg)] {
            let write = write_acl("*");
            let with = image(std::slice::from_ref(&write));
            for _ in 0..2 {
                assert!(may_write(&a, &with, "127.0.0.1"));
            }
            let mut deny = write.clone();
            deny.permission = AclPermissionType::Deny;
            assert!(!may_write(&a, &image(&[write, deny]), "127.0.0.1"));
            assert!(!may_write(&a, &image(&[]), "127.0.0.1"));
            // Clients over IPv6 are matched in Java's form, whatever form the ACL is in.
            let only_v6 = image(&[write_acl("::1")]);
            assert!(may_write(&a, &only_v6, "::1"));
            assert!(!may_write(&a, &only_v6, "::ffff:127.0.0.1"));
            assert!(!may_write(&a, &only_v6, "127.0.0.1"));
        }
    }
}
