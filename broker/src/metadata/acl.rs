//! ACLs with the semantics of Kafka's `StandardAuthorizer` (KRaft), as data in the metadata
//! image and as an index that answers "may principal P do operation O on resource R from host
//! H". It lives below the controller and the handlers, as Kafka keeps
//! `metadata/authorizer` below both.
//!
//! The rules, Kafka's:
//! - `super.users` may do everything;
//! - an ACL matches a resource when its pattern is LITERAL and equal to the name, LITERAL `*`,
//!   or PREFIXED and a prefix of the name; it matches a principal when equal or `User:*`, a
//!   host when equal or `*`;
//! - any matching DENY (for the operation or ALL) wins over every ALLOW;
//! - an ALLOW of the operation or of ALL allows; DESCRIBE is also allowed by READ, WRITE,
//!   DELETE or ALTER, and DESCRIBE_CONFIGS by ALTER_CONFIGS;
//! - when no ACL at all matches the resource (whoever it names), the answer is
//!   `allow.everyone.if.no.acl.found` (false by default).
//!
//! Lookups go through a map keyed by (resource type, pattern name): literal names and `*` are
//! two probes, prefixes one probe per prefix of the name that some ACL uses (bounded by the
//! name's length), so a decision costs a few map lookups, not a walk over every ACL.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The most ACL bindings a cluster holds (CreateAcls beyond it is refused).
pub const MAX_ACL_BINDINGS: usize = 100_000;

macro_rules! kafka_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// From Kafka's wire code.
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses Kafka's name or kafka-acls.sh's spelling (`DescribeConfigs`,
            /// `describe-configs`, `DESCRIBE_CONFIGS`), case-insensitively.
            pub fn parse(s: &str) -> Option<$name> {
                let norm: String = s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_uppercase();
                $(if norm == $text.replace('_', "") { return Some($name::$variant); })*
                None
            }
        }
    };
}

kafka_enum!(
    /// A resource type (Kafka's `ResourceType`).
    ResourceType {
        /// Unknown.
        Unknown = 0, "UNKNOWN";
        /// Any (filters only).
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (name `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user.
        User = 7, "USER";
    }
);

kafka_enum!(
    /// How an ACL's resource name matches (Kafka's `PatternType`).
    PatternType {
        /// Unknown.
        Unknown = 0, "UNKNOWN";
        /// Any pattern type (filters only).
        Any = 1, "ANY";
        /// Every binding that would apply to the named resource (filters only).
        Match = 2, "MATCH";
        /// The name exactly, or `*` for every resource.
        Literal = 3, "LITERAL";
        /// Every resource whose name starts with the pattern.
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// An operation (Kafka's `AclOperation`).
    AclOperation {
        /// Unknown.
        Unknown = 0, "UNKNOWN";
        /// Any (filters only).
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Read.
        Read = 3, "READ";
        /// Write.
        Write = 4, "WRITE";
        /// Create.
        Create = 5, "CREATE";
        /// Delete.
        Delete = 6, "DELETE";
        /// Alter.
        Alter = 7, "ALTER";
        /// Describe.
        Describe = 8, "DESCRIBE";
        /// Inter-broker actions.
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Describe configs.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Alter configs.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

kafka_enum!(
    /// Allow or deny (Kafka's `AclPermissionType`).
    AclPermissionType {
        /// Unknown.
        Unknown = 0, "UNKNOWN";
        /// Any (filters only).
        Any = 1, "ANY";
        /// Deny: wins over every allow.
        Deny = 2, "DENY";
        /// Allow.
        Allow = 3, "ALLOW";
    }
);

/// The cluster resource's only name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The wildcard resource name, principal and host.
pub const WILDCARD: &str = "*";

/// A client address as ACL hosts name it: Java's `InetAddress.getHostAddress()`, which Kafka
/// compares ACL hosts with. IPv4 (and IPv4-mapped IPv6) as dotted quads; IPv6 as eight
/// lower-case hex groups without zero compression (`0:0:0:0:0:0:0:1`, not `::1`), so an ACL
/// written for a Kafka cluster matches here too.
pub fn host_string(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
            groups.join(":")
        }
    }
}

/// One ACL, as CreateAcls carries it and the metadata log stores it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name or pattern.
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*`.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// ALLOW or DENY.
    pub permission: AclPermissionType,
}

impl AclBinding {
    /// Kafka's CreateAcls checks: concrete types only, a `Type:name` principal, a name for
    /// the resource (`kafka-cluster` for the cluster), `*` only as a literal.
    pub fn validate(&self) -> Result<(), String> {
        use AclOperation as O;
        if matches!(
            self.resource_type,
            ResourceType::Any | ResourceType::Unknown
        ) {
            return Err("Invalid resource type ANY or UNKNOWN".into());
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!(
                "Invalid pattern type {}: must be LITERAL or PREFIXED",
                self.pattern_type.name()
            ));
        }
        if matches!(self.operation, O::Any | O::Unknown) {
            return Err("Invalid operation ANY or UNKNOWN".into());
        }
        if !matches!(
            self.permission,
            AclPermissionType::Allow | AclPermissionType::Deny
        ) {
            return Err("Invalid permission type: must be ALLOW or DENY".into());
        }
        if self.resource_name.is_empty() {
            return Err("Resource name must not be empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if self.pattern_type == PatternType::Prefixed && self.resource_name == WILDCARD {
            return Err("A PREFIXED pattern cannot be the wildcard *".into());
        }
        match self.principal.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
            _ => {
                return Err(format!(
                    "Could not parse principal {:?}: expected Type:name, e.g. User:alice",
                    self.principal
                ))
            }
        }
        if self.host.is_empty() {
            return Err("Host must not be empty (use * for any host)".into());
        }
        Ok(())
    }
}

/// A DescribeAcls / DeleteAcls filter: `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// Resource type, or ANY.
    pub resource_type: ResourceType,
    /// Resource name, or any.
    pub resource_name: Option<String>,
    /// ANY, MATCH, LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// Principal, or any.
    pub principal: Option<String>,
    /// Host, or any.
    pub host: Option<String>,
    /// Operation, or ANY.
    pub operation: AclOperation,
    /// Permission, or ANY.
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// Kafka's filter checks: no UNKNOWN values.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Unknown
            || self.pattern_type == PatternType::Unknown
            || self.operation == AclOperation::Unknown
            || self.permission == AclPermissionType::Unknown
        {
            return Err("The filter has an UNKNOWN element".into());
        }
        Ok(())
    }

    /// Whether `b` is selected by this filter (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, b: &AclBinding) -> bool {
        let resource_ok = (self.resource_type == ResourceType::Any
            || self.resource_type == b.resource_type)
            && match (self.pattern_type, &self.resource_name) {
                (PatternType::Any, None) => true,
                (PatternType::Any, Some(n)) => *n == b.resource_name,
                (PatternType::Match, None) => true,
                (PatternType::Match, Some(n)) => match b.pattern_type {
                    PatternType::Literal => b.resource_name == *n || b.resource_name == WILDCARD,
                    PatternType::Prefixed => n.starts_with(&b.resource_name),
                    _ => false,
                },
                (p, name) => {
                    p == b.pattern_type && name.as_ref().is_none_or(|n| *n == b.resource_name)
                }
            };
        resource_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == AclPermissionType::Any || self.permission == b.permission)
    }
}

/// The authorizer's settings (`super.users`, `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// Principals allowed everything.
    pub super_users: BTreeSet<String>,
    /// The answer when no ACL matches a resource.
    pub allow_everyone_if_no_acl_found: bool,
}

impl From<&crate::config::security::AuthorizerConfig> for AuthorizerSettings {
    fn from(cfg: &crate::config::security::AuthorizerConfig) -> AuthorizerSettings {
        AuthorizerSettings {
            super_users: cfg.super_users.iter().cloned().collect(),
            allow_everyone_if_no_acl_found: cfg.allow_everyone_if_no_acl_found,
        }
    }
}

/// The ACLs of one image, indexed for decisions.
#[derive(Debug, Default)]
pub struct AclIndex {
    /// Type → LITERAL name → bindings; `*` is a name like any other here. Keyed by type
    /// first so a decision looks names up as `&str`, without building a key.
    literal: BTreeMap<ResourceType, BTreeMap<String, Vec<AclBinding>>>,
    /// Type → PREFIXED pattern → bindings.
    prefixed: BTreeMap<ResourceType, BTreeMap<String, Vec<AclBinding>>>,
    /// Lengths of the prefixed patterns in use, per type: the prefixes worth probing.
    prefix_lengths: BTreeMap<ResourceType, BTreeSet<usize>>,
}

impl AclIndex {
    /// Indexes `bindings`.
    pub fn new<'a>(bindings: impl IntoIterator<Item = &'a AclBinding>) -> AclIndex {
        let mut ix = AclIndex::default();
        for b in bindings {
            let by_name = match b.pattern_type {
                PatternType::Prefixed => {
                    ix.prefix_lengths
                        .entry(b.resource_type)
                        .or_default()
                        .insert(b.resource_name.len());
                    &mut ix.prefixed
                }
                _ => &mut ix.literal,
            };
            let mut b = b.clone();
            // Requests are matched with the client's address in Java's form. An ACL stored
            // in another spelling of the same address (`::1`, `::ffff:10.0.0.7`: a tool that
            // kept what was typed, or a Rill before this form) names the same client, so it
            // is indexed in that form: no DENY stops applying over a spelling.
            if let Ok(ip) = b.host.parse::<std::net::IpAddr>() {
                b.host = host_string(ip);
            }
            by_name
                .entry(b.resource_type)
                .or_default()
                .entry(b.resource_name.clone())
                .or_default()
                .push(b);
        }
        ix
    }

    /// The bindings that apply to resource `name` of type `rt`.
    fn applicable<'a>(
        &'a self,
        rt: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> {
        let literal = self.literal.get(&rt);
        let exact = literal.and_then(|m| m.get(name));
        let wildcard = literal
            .filter(|_| name != WILDCARD)
            .and_then(|m| m.get(WILDCARD));
        let prefixed = self.prefixed.get(&rt);
        let prefixes = self
            .prefix_lengths
            .get(&rt)
            .into_iter()
            .flatten()
            .filter(move |len| **len <= name.len() && name.is_char_boundary(**len))
            .filter_map(move |len| prefixed.and_then(|m| m.get(&name[..*len])));
        exact.into_iter().chain(wildcard).chain(prefixes).flatten()
    }

    /// Kafka's decision for `principal` from `host` doing `op` on resource `name` of `rt`.
    pub fn authorize(
        &self,
        settings: &AuthorizerSettings,
        principal: &str,
        host: &str,
        op: AclOperation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        self.decide(settings, principal, host, op, rt, name)
            .allowed()
    }

    /// The decision with its reason (the console's "what may P do on R" shows it). The one
    /// place the rules are applied: [`AclIndex::authorize`] is this without the reason.
    pub fn decide<'a>(
        &'a self,
        settings: &AuthorizerSettings,
        principal: &str,
        host: &str,
        op: AclOperation,
        rt: ResourceType,
        name: &'a str,
    ) -> Decision<'a> {
        if settings.super_users.contains(principal) {
            return Decision::SuperUser;
        }
        let mut any = false;
        let mut allowed_by = None;
        // `User:*` names every principal of the type.
        let principal_type = principal.split_once(':').map(|(t, _)| t);
        let names_principal = |p: &str| {
            p == principal
                || p.strip_suffix(":*")
                    .is_some_and(|t| Some(t) == principal_type)
        };
        for b in self.applicable(rt, name) {
            any = true;
            if !names_principal(&b.principal) {
                continue;
            }
            if !(b.host == WILDCARD || b.host == host) {
                continue;
            }
            match b.permission {
                AclPermissionType::Deny
                    if b.operation == op || b.operation == AclOperation::All =>
                {
                    return Decision::DeniedBy(b);
                }
                AclPermissionType::Allow if allowed_by.is_none() && implies(b.operation, op) => {
                    allowed_by = Some(b)
                }
                _ => {}
            }
        }
        match allowed_by {
            Some(b) => Decision::AllowedBy(b),
            None if !any => Decision::NoAcls {
                allowed: settings.allow_everyone_if_no_acl_found,
            },
            None => Decision::NoMatchingAllow,
        }
    }

    /// KIP-679's `authorizeByResourceType`: may `principal` do `op` on *some* resource of
    /// `rt` (a literal or prefixed ALLOW not cancelled by a DENY of the same or a wider
    /// pattern)? Used where Kafka allows idempotent produce with WRITE on any topic.
    pub fn authorize_any(
        &self,
        settings: &AuthorizerSettings,
        principal: &str,
        host: &str,
        op: AclOperation,
        rt: ResourceType,
    ) -> bool {
        if settings.super_users.contains(principal) {
            return true;
        }
        let mut names = [&self.literal, &self.prefixed]
            .into_iter()
            .filter_map(|by_type| by_type.get(&rt))
            .flat_map(|by_name| by_name.keys())
            .peekable();
        if names.peek().is_none() {
            return settings.allow_everyone_if_no_acl_found;
        }
        names.any(|name| self.authorize(settings, principal, host, op, rt, name))
    }
}

/// A decision and why (Kafka's `AuthorizationResult` plus the ACL that decided it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The principal is in `super.users`.
    SuperUser,
    /// A matching DENY (for the operation or ALL): it wins over every ALLOW.
    DeniedBy(&'a AclBinding),
    /// A matching ALLOW and no DENY.
    AllowedBy(&'a AclBinding),
    /// No ACL names the resource at all: `allow.everyone.if.no.acl.found` decides.
    NoAcls {
        /// That setting.
        allowed: bool,
    },
    /// ACLs name the resource, but none allows this principal, host and operation.
    NoMatchingAllow,
}

impl Decision<'_> {
    /// Allowed or not.
    pub fn allowed(&self) -> bool {
        match self {
            Decision::SuperUser | Decision::AllowedBy(_) => true,
            Decision::NoAcls { allowed } => *allowed,
            Decision::DeniedBy(_) | Decision::NoMatchingAllow => false,
        }
    }
}

/// The operations that apply to a resource type, as kafka-acls.sh lists them (ALL included).
pub fn operations_for(rt: ResourceType) -> &'static [AclOperation] {
    use AclOperation as O;
    match rt {
        ResourceType::Topic => &[
            O::Read,
            O::Write,
            O::Create,
            O::Delete,
            O::Alter,
            O::Describe,
            O::DescribeConfigs,
            O::AlterConfigs,
            O::All,
        ],
        ResourceType::Group => &[O::Read, O::Describe, O::Delete, O::All],
        ResourceType::Cluster => &[
            O::Create,
            O::ClusterAction,
            O::DescribeConfigs,
            O::AlterConfigs,
            O::IdempotentWrite,
            O::Alter,
            O::Describe,
            O::All,
        ],
        ResourceType::TransactionalId => &[O::Describe, O::Write, O::All],
        ResourceType::DelegationToken => &[O::Describe, O::All],
        ResourceType::User => &[O::CreateTokens, O::DescribeTokens, O::All],
        ResourceType::Any | ResourceType::Unknown => &[],
    }
}

/// Whether an ALLOW of `granted` allows `wanted`.
fn implies(granted: AclOperation, wanted: AclOperation) -> bool {
    use AclOperation as O;
    granted == wanted
        || granted == O::All
        || (wanted == O::Describe && matches!(granted, O::Read | O::Write | O::Delete | O::Alter))
        || (wanted == O::DescribeConfigs && granted == O::AlterConfigs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclOperation as O;

    #[test]
    fn hosts_read_as_java_prints_them() {
        let h = |s: &str| host_string(s.parse().unwrap());
        assert_eq!(h("127.0.0.1"), "127.0.0.1");
        assert_eq!(h("::1"), "0:0:0:0:0:0:0:1");
        assert_eq!(h("fe80::1:abcd"), "fe80:0:0:0:0:0:1:abcd");
        assert_eq!(h("::ffff:10.0.0.7"), "10.0.0.7");
        // An ACL stored as `::1` still names the client the broker sees as 0:0:0:0:0:0:0:1.
        let deny = acl(
            R::Topic,
            "t",
            Pt::Literal,
            "User:a",
            "::1",
            O::Read,
            P::Deny,
        );
        let allow = topic_allow("t", Pt::Literal, "User:a", O::Read);
        let ix = AclIndex::new([&deny, &allow]);
        let s = AuthorizerSettings::default();
        assert!(!ix.authorize(&s, "User:a", &h("::1"), O::Read, R::Topic, "t"));
        assert!(ix.authorize(&s, "User:a", &h("::2"), O::Read, R::Topic, "t"));
    }

    #[test]
    fn decisions_name_their_reason() {
        let settings = AuthorizerSettings::default();
        let allow = topic_allow("orders", Pt::Literal, "User:alice", O::Read);
        let deny = acl(
            R::Topic,
            "ord",
            Pt::Prefixed,
            "User:*",
            "10.0.0.9",
            O::All,
            P::Deny,
        );
        let ix = AclIndex::new([&allow, &deny]);
        let d = |host: &str, op| ix.decide(&settings, "User:alice", host, op, R::Topic, "orders");
        assert_eq!(d("10.0.0.1", O::Read), Decision::AllowedBy(&allow));
        assert_eq!(d("10.0.0.1", O::Describe), Decision::AllowedBy(&allow));
        assert_eq!(d("10.0.0.9", O::Read), Decision::DeniedBy(&deny));
        assert_eq!(d("10.0.0.1", O::Write), Decision::NoMatchingAllow);
        let none = ix.decide(&settings, "User:alice", "h", O::Read, R::Topic, "other");
        assert_eq!(none, Decision::NoAcls { allowed: false });
        let admin = AuthorizerSettings {
            super_users: ["User:root".to_string()].into(),
            allow_everyone_if_no_acl_found: false,
        };
        assert_eq!(
            ix.decide(&admin, "User:root", "10.0.0.9", O::Read, R::Topic, "orders"),
            Decision::SuperUser
        );
        assert!(operations_for(R::Group).contains(&O::Read));
        assert!(!operations_for(R::Group).contains(&O::Write));
    }
    use AclPermissionType as P;
    use PatternType as Pt;
    use ResourceType as R;

    fn acl(rt: R, name: &str, pt: Pt, principal: &str, host: &str, op: O, p: P) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: host.into(),
            operation: op,
            permission: p,
        }
    }

    fn topic_allow(name: &str, pt: Pt, principal: &str, op: O) -> AclBinding {
        acl(R::Topic, name, pt, principal, "*", op, P::Allow)
    }

    fn settings() -> AuthorizerSettings {
        AuthorizerSettings {
            super_users: ["User:admin".to_string()].into(),
            allow_everyone_if_no_acl_found: false,
        }
    }

    fn can(ix: &AclIndex, who: &str, op: O, topic: &str) -> bool {
        ix.authorize(&settings(), who, "10.0.0.1", op, R::Topic, topic)
    }

    #[test]
    fn deny_by_default_and_super_users() {
        let ix = AclIndex::new(&[]);
        assert!(!can(&ix, "User:alice", O::Read, "t"));
        assert!(can(&ix, "User:admin", O::Read, "t"));
        let open = AuthorizerSettings {
            allow_everyone_if_no_acl_found: true,
            ..settings()
        };
        assert!(ix.authorize(&open, "User:alice", "h", O::Read, R::Topic, "t"));
        // An ACL for someone else on the resource: "no ACL found" no longer applies.
        let ix = AclIndex::new(&[topic_allow("t", Pt::Literal, "User:bob", O::Read)]);
        assert!(!ix.authorize(&open, "User:alice", "h", O::Read, R::Topic, "t"));
        assert!(ix.authorize(&open, "User:alice", "h", O::Read, R::Topic, "other"));
    }

    #[test]
    fn prefixed_grants_exactly_what_it_names() {
        let ix = AclIndex::new(&[topic_allow("foo", Pt::Prefixed, "User:alice", O::Read)]);
        for (t, want) in [
            ("foo", true),
            ("foobar", true),
            ("fo", false),
            ("bar", false),
            ("xfoo", false),
        ] {
            assert_eq!(can(&ix, "User:alice", O::Read, t), want, "{t}");
        }
        assert!(!can(&ix, "User:alice", O::Write, "foo"));
        assert!(!can(&ix, "User:bob", O::Read, "foo"));
    }

    #[test]
    fn deny_wins_and_wildcards() {
        let ix = AclIndex::new(&[
            topic_allow("*", Pt::Literal, "User:*", O::All),
            acl(
                R::Topic,
                "secret",
                Pt::Prefixed,
                "User:alice",
                "*",
                O::Read,
                P::Deny,
            ),
            acl(
                R::Topic,
                "t",
                Pt::Literal,
                "User:bob",
                "10.0.0.1",
                O::All,
                P::Deny,
            ),
        ]);
        assert!(can(&ix, "User:alice", O::Read, "anything"));
        assert!(!can(&ix, "User:alice", O::Read, "secret-1"));
        assert!(can(&ix, "User:alice", O::Write, "secret-1"));
        assert!(!can(&ix, "User:bob", O::Write, "t"));
        assert!(ix.authorize(&settings(), "User:bob", "10.0.0.2", O::Write, R::Topic, "t"));
    }

    #[test]
    fn implied_operations() {
        for granted in [O::Read, O::Write, O::Delete, O::Alter] {
            let ix = AclIndex::new(&[topic_allow("t", Pt::Literal, "User:a", granted)]);
            assert!(can(&ix, "User:a", O::Describe, "t"), "{granted:?}");
            assert!(!can(&ix, "User:a", O::Create, "t"), "{granted:?}");
        }
        let ix = AclIndex::new(&[topic_allow("t", Pt::Literal, "User:a", O::AlterConfigs)]);
        assert!(can(&ix, "User:a", O::DescribeConfigs, "t"));
        // A DENY of READ does not deny DESCRIBE (Kafka's rule).
        let ix = AclIndex::new(&[
            topic_allow("t", Pt::Literal, "User:a", O::Describe),
            acl(R::Topic, "t", Pt::Literal, "User:a", "*", O::Read, P::Deny),
        ]);
        assert!(can(&ix, "User:a", O::Describe, "t"));
        assert!(!can(&ix, "User:a", O::Read, "t"));
    }

    #[test]
    fn any_resource_of_a_type() {
        let ix = AclIndex::new(&[topic_allow("orders", Pt::Prefixed, "User:a", O::Write)]);
        assert!(ix.authorize_any(&settings(), "User:a", "h", O::Write, R::Topic));
        assert!(!ix.authorize_any(&settings(), "User:b", "h", O::Write, R::Topic));
    }

    #[test]
    fn filters_match_like_kafka() {
        let lit = topic_allow("foo", Pt::Literal, "User:a", O::Read);
        let pre = topic_allow("fo", Pt::Prefixed, "User:a", O::Read);
        let wild = topic_allow("*", Pt::Literal, "User:a", O::Read);
        let f = |name: Option<&str>, pt: Pt| AclBindingFilter {
            resource_type: R::Any,
            resource_name: name.map(str::to_string),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: O::Any,
            permission: P::Any,
        };
        let m = f(Some("foo"), Pt::Match);
        assert!(m.matches(&lit) && m.matches(&pre) && m.matches(&wild));
        let l = f(Some("foo"), Pt::Literal);
        assert!(l.matches(&lit) && !l.matches(&pre) && !l.matches(&wild));
        let any = f(None, Pt::Any);
        assert!(any.matches(&lit) && any.matches(&pre));
        let p = f(Some("fo"), Pt::Prefixed);
        assert!(p.matches(&pre) && !p.matches(&lit));
        let unknown = AclBindingFilter {
            operation: O::Unknown,
            ..f(None, Pt::Any)
        };
        assert!(unknown.validate().is_err());
    }

    #[test]
    fn validation_is_kafkas() {
        let good = topic_allow("t", Pt::Literal, "User:a", O::Read);
        assert!(good.validate().is_ok());
        let bad = [
            AclBinding {
                resource_type: R::Any,
                ..good.clone()
            },
            AclBinding {
                pattern_type: Pt::Match,
                ..good.clone()
            },
            AclBinding {
                operation: O::Any,
                ..good.clone()
            },
            AclBinding {
                permission: P::Any,
                ..good.clone()
            },
            AclBinding {
                principal: "alice".into(),
                ..good.clone()
            },
            AclBinding {
                resource_name: String::new(),
                ..good.clone()
            },
            AclBinding {
                resource_type: R::Cluster,
                resource_name: "c".into(),
                ..good.clone()
            },
            AclBinding {
                resource_name: "*".into(),
                pattern_type: Pt::Prefixed,
                ..good.clone()
            },
            AclBinding {
                host: String::new(),
                ..good.clone()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
        assert_eq!(
            AclOperation::parse("describe-configs"),
            Some(O::DescribeConfigs)
        );
        assert_eq!(
            AclOperation::parse("DescribeConfigs"),
            Some(O::DescribeConfigs)
        );
        assert_eq!(ResourceType::from_code(5), Some(R::TransactionalId));
        assert_eq!(O::IdempotentWrite.code(), 12);
    }

    /// Random ACL sets and queries: the index answers as a naive scan of every binding does.
    #[test]
    fn index_agrees_with_a_naive_scan() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let names = ["a", "ab", "abc", "b", "*", "abd"];
        let principals = ["User:x", "User:y", "User:*"];
        let ops = [O::Read, O::Write, O::Describe, O::All, O::Alter];
        for _ in 0..300 {
            let n = rng.gen_range(0..8);
            let acls: Vec<AclBinding> = (0..n)
                .map(|_| {
                    let name = names[rng.gen_range(0..names.len())];
                    let pt = if name != "*" && rng.gen_bool(0.4) {
                        Pt::Prefixed
                    } else {
                        Pt::Literal
                    };
                    acl(
                        R::Topic,
                        name,
                        pt,
                        principals[rng.gen_range(0..principals.len())],
                        if rng.gen_bool(0.8) { "*" } else { "h1" },
                        ops[rng.gen_range(0..ops.len())],
                        if rng.gen_bool(0.3) { P::Deny } else { P::Allow },
                    )
                })
                .collect();
            let ix = AclIndex::new(&acls);
            let s = AuthorizerSettings {
                super_users: BTreeSet::new(),
                allow_everyone_if_no_acl_found: rng.gen_bool(0.5),
            };
            for _ in 0..20 {
                let who = ["User:x", "User:y"][rng.gen_range(0..2)];
                let host = ["h1", "h2"][rng.gen_range(0..2)];
                let op = [O::Read, O::Write, O::Describe][rng.gen_range(0..3)];
                let name = ["a", "ab", "abc", "abcd", "b", "zz"][rng.gen_range(0..6)];
                let applies = |b: &&AclBinding| match b.pattern_type {
                    Pt::Prefixed => name.starts_with(&b.resource_name),
                    _ => b.resource_name == name || b.resource_name == "*",
                };
                let matching: Vec<&AclBinding> = acls.iter().filter(applies).collect();
                let mine = |b: &&&AclBinding| {
                    (b.principal == who || b.principal == "User:*")
                        && (b.host == "*" || b.host == host)
                };
                let naive = if matching.is_empty() {
                    s.allow_everyone_if_no_acl_found
                } else {
                    let m: Vec<&&AclBinding> = matching.iter().filter(mine).collect();
                    !m.iter().any(|b| {
                        b.permission == P::Deny && (b.operation == op || b.operation == O::All)
                    }) && m
                        .iter()
                        .any(|b| b.permission == P::Allow && implies(b.operation, op))
                };
                assert_eq!(
                    ix.authorize(&s, who, host, op, R::Topic, name),
                    naive,
                    "{acls:?} {who} {host} {op:?} {name}"
                );
            }
        }
    }
}
