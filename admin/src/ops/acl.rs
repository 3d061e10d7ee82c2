//! ACLs between the wire (`rill_client::Acl`, Kafka's codes) and the authorizer's types
//! (`rill_broker::metadata::acl`), and the one parser of an ACL typed by a person, shared by
//! `rill acls` and the console so both accept and refuse the same input.

use std::net::IpAddr;

use rill_broker::metadata::acl::{
    host_string, operations_for, AclBinding, AclOperation, AclPermissionType, PatternType,
    ResourceType, CLUSTER_NAME, WILDCARD,
};
use rill_client::Acl;

/// The wire form of `b`.
pub fn wire(b: &AclBinding) -> Acl {
    Acl {
        resource_type: b.resource_type.code(),
        resource_name: b.resource_name.clone(),
        pattern_type: b.pattern_type.code(),
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: b.operation.code(),
        permission: b.permission.code(),
    }
}

/// `a` as a binding, or `None` when a code is not one Kafka defines.
pub fn binding(a: &Acl) -> Option<AclBinding> {
    Some(AclBinding {
        resource_type: ResourceType::from_code(a.resource_type)?,
        resource_name: a.resource_name.clone(),
        pattern_type: PatternType::from_code(a.pattern_type)?,
        principal: a.principal.clone(),
        host: a.host.clone(),
        operation: AclOperation::from_code(a.operation)?,
        permission: AclPermissionType::from_code(a.permission)?,
    })
}

/// An ACL as a person types it, every part a string.
#[derive(Debug, Clone, Default)]
pub struct AclInput<'a> {
    /// `User:alice`.
    pub principal: &'a str,
    /// `allow` or `deny`.
    pub permission: &'a str,
    /// An operation (`read`, `DescribeConfigs`, `DESCRIBE_CONFIGS`).
    pub operation: &'a str,
    /// `topic`, `group`, `cluster`, `transactional_id`.
    pub resource_type: &'a str,
    /// The name, prefix or `*` (ignored for the cluster).
    pub resource_name: &'a str,
    /// `literal` or `prefixed`.
    pub pattern_type: &'a str,
    /// An IP address or `*` (empty = `*`).
    pub host: &'a str,
}

/// Why an [`AclInput`] is refused: the field to blame and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclInputError {
    /// `principal`, `operation`, `resource_name`, ...
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> AclInputError {
    AclInputError {
        field,
        message: message.into(),
    }
}

/// Longest resource name accepted for groups and transactional ids (Kafka sets none; a bound
/// of our own keeps a form from storing megabytes). Topics: [`MAX_TOPIC_NAME`].
pub const MAX_RESOURCE_NAME: usize = 1024;
/// Kafka's longest topic name.
pub const MAX_TOPIC_NAME: usize = 249;
/// Longest principal accepted (`Type:name`).
pub const MAX_PRINCIPAL: usize = 1024;

/// Parses and checks an ACL as kafka-acls.sh would: a `Type:name` principal, an operation
/// that applies to the resource type, a topic name or prefix of legal characters, an IP
/// host written as the broker compares it (Java's form), and the broker's own rules
/// ([`AclBinding::validate`]).
pub fn parse(input: &AclInput<'_>) -> Result<AclBinding, AclInputError> {
    let principal = input.principal.trim();
    if principal.len() > MAX_PRINCIPAL {
        return Err(refuse(
            "principal",
            format!("a principal has at most {MAX_PRINCIPAL} bytes"),
        ));
    }
    match principal.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
        _ => {
            return Err(refuse(
                "principal",
                "a principal is Type:name, e.g. User:alice (User:* for every user)",
            ))
        }
    }
    let permission = match input.permission.trim().to_ascii_lowercase().as_str() {
        "allow" => AclPermissionType::Allow,
        "deny" => AclPermissionType::Deny,
        other => {
            return Err(refuse(
                "permission",
                format!("permission '{other}': allow or deny"),
            ))
        }
    };
    let resource_type = ResourceType::parse(input.resource_type.trim())
        .filter(|t| {
            matches!(
                t,
                ResourceType::Topic
                    | ResourceType::Group
                    | ResourceType::Cluster
                    | ResourceType::TransactionalId
            )
        })
        .ok_or_else(|| {
            refuse(
                "resource_type",
                "the resource type is topic, group, cluster or transactional_id",
            )
        })?;
    let allowed_ops = operations_for(resource_type);
    let operation = AclOperation::parse(input.operation.trim())
        .filter(|o| allowed_ops.contains(o))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed_ops.iter().map(|o| o.name()).collect();
            refuse(
                "operation",
                format!(
                    "operation '{}' does not apply to {}: one of {}",
                    input.operation.trim(),
                    resource_type.name(),
                    names.join(", ")
                ),
            )
        })?;
    let (resource_name, pattern_type) = if resource_type == ResourceType::Cluster {
        let n = input.resource_name.trim();
        if !(n.is_empty() || n == CLUSTER_NAME) {
            return Err(refuse(
                "resource_name",
                format!("the cluster resource is named {CLUSTER_NAME} (or leave it empty)"),
            ));
        }
        (CLUSTER_NAME.to_string(), PatternType::Literal)
    } else {
        let pattern_type = match input.pattern_type.trim().to_ascii_lowercase().as_str() {
            "" | "literal" => PatternType::Literal,
            "prefixed" => PatternType::Prefixed,
            other => {
                return Err(refuse(
                    "pattern_type",
                    format!("pattern '{other}': literal or prefixed"),
                ))
            }
        };
        let n = input.resource_name.trim();
        if n.is_empty() {
            return Err(refuse(
                "resource_name",
                "a resource name is required (* for every one)",
            ));
        }
        let max = if resource_type == ResourceType::Topic {
            MAX_TOPIC_NAME
        } else {
            MAX_RESOURCE_NAME
        };
        if n.len() > max {
            return Err(refuse(
                "resource_name",
                format!(
                    "a {} name has at most {max} bytes",
                    resource_type.name().to_ascii_lowercase()
                ),
            ));
        }
        if resource_type == ResourceType::Topic && n != WILDCARD {
            if let Some(c) = n
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            {
                return Err(refuse(
                    "resource_name",
                    format!("'{c}' cannot be in a topic name (letters, digits, '.', '_', '-')"),
                ));
            }
        }
        if pattern_type == PatternType::Prefixed && n == WILDCARD {
            return Err(refuse(
                "pattern_type",
                "* is literal: it already names every resource",
            ));
        }
        (n.to_string(), pattern_type)
    };
    let host = match input.host.trim() {
        "" | WILDCARD => WILDCARD.to_string(),
        h => match h.parse::<IpAddr>() {
            Ok(ip) => host_string(ip),
            Err(_) => {
                return Err(refuse(
                    "host",
                    format!(
                        "host '{h}': an IP address or * (brokers compare client IPs, not names)"
                    ),
                ))
            }
        },
    };
    let b = AclBinding {
        resource_type,
        resource_name,
        pattern_type,
        principal: principal.to_string(),
        host,
        operation,
        permission,
    };
    b.validate().map_err(|m| refuse("", m))?;
    Ok(b)
}

/// An ACL exactly as the cluster listed it (Kafka's names for the enums; principal, host
/// and name as stored, untrimmed): what a delete names. Only the broker's own rules apply
/// ([`AclBinding::validate`]), nothing is rewritten, so any listed ACL can be deleted —
/// one a tool stored with a host name, or an operation kafka-acls.sh would not offer.
pub fn exact(input: &AclInput<'_>) -> Result<AclBinding, AclInputError> {
    let b = AclBinding {
        resource_type: ResourceType::parse(input.resource_type)
            .ok_or_else(|| refuse("", format!("resource type '{}'", input.resource_type)))?,
        resource_name: input.resource_name.to_string(),
        pattern_type: PatternType::parse(input.pattern_type)
            .ok_or_else(|| refuse("", format!("pattern type '{}'", input.pattern_type)))?,
        principal: input.principal.to_string(),
        host: input.host.to_string(),
        operation: AclOperation::parse(input.operation)
            .ok_or_else(|| refuse("", format!("operation '{}'", input.operation)))?,
        permission: AclPermissionType::parse(input.permission)
            .ok_or_else(|| refuse("", format!("permission '{}'", input.permission)))?,
    };
    b.validate().map_err(|m| refuse("", m))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(op: &'a str, rt: &'a str, name: &'a str) -> AclInput<'a> {
        AclInput {
            principal: "User:alice",
            permission: "allow",
            operation: op,
            resource_type: rt,
            resource_name: name,
            pattern_type: "literal",
            host: "",
        }
    }

    #[test]
    fn parses_what_kafka_acls_accepts() {
        let b = parse(&input("DescribeConfigs", "topic", "orders")).unwrap();
        assert_eq!(b.operation, AclOperation::DescribeConfigs);
        assert_eq!(b.host, "*");
        let c = parse(&input("idempotent_write", "cluster", "")).unwrap();
        assert_eq!(
            (c.resource_name.as_str(), c.pattern_type),
            (CLUSTER_NAME, PatternType::Literal)
        );
        let mut v6 = input("read", "group", "g");
        v6.host = "::1";
        assert_eq!(parse(&v6).unwrap().host, "0:0:0:0:0:0:0:1");
        let b = parse(&wire_round_trip(&b)).unwrap();
        assert_eq!(b.resource_name, "orders");
    }

    fn wire_round_trip(b: &AclBinding) -> AclInput<'_> {
        AclInput {
            principal: &b.principal,
            permission: b.permission.name(),
            operation: b.operation.name(),
            resource_type: b.resource_type.name(),
            resource_name: &b.resource_name,
            pattern_type: b.pattern_type.name(),
            host: &b.host,
        }
    }

    #[test]
    fn refuses_with_the_field_to_blame() {
        let field = |i: AclInput<'_>| parse(&i).unwrap_err().field;
        assert_eq!(field(input("write", "group", "g")), "operation");
        assert_eq!(field(input("read", "topic", "bad name")), "resource_name");
        assert_eq!(field(input("read", "topic", "")), "resource_name");
        assert_eq!(field(input("read", "user", "x")), "resource_type");
        let mut p = input("read", "topic", "*");
        p.pattern_type = "prefixed";
        assert_eq!(field(p), "pattern_type");
        let mut h = input("read", "topic", "t");
        h.host = "example.com";
        assert_eq!(field(h), "host");
        let mut who = input("read", "topic", "t");
        who.principal = "alice";
        assert_eq!(field(who), "principal");
        let mut c = input("read", "cluster", "other");
        c.operation = "alter";
        assert_eq!(field(c), "resource_name");
        let a = wire(&parse(&input("read", "topic", "t")).unwrap());
        assert_eq!(binding(&a), parse(&input("read", "topic", "t")).ok());
        let long = "t".repeat(MAX_TOPIC_NAME + 1);
        assert_eq!(field(input("read", "topic", &long)), "resource_name");
        let mut big = input("read", "topic", "t");
        let who = format!("User:{}", "a".repeat(MAX_PRINCIPAL));
        big.principal = &who;
        assert_eq!(field(big), "principal");
    }

    #[test]
    fn exact_keeps_what_was_stored() {
        let stored = AclInput {
            principal: "User:alice",
            permission: "ALLOW",
            operation: "WRITE",
            resource_type: "GROUP",
            resource_name: "g",
            pattern_type: "LITERAL",
            host: "localhost",
        };
        let b = exact(&stored).unwrap();
        assert_eq!(
            (b.host.as_str(), b.operation),
            ("localhost", AclOperation::Write)
        );
        let mut any = stored.clone();
        any.pattern_type = "ANY";
        assert!(exact(&any).is_err(), "a filter value is not an ACL");
    }
}
