//! DescribeClientQuotas (KIP-546): DESCRIBE_CONFIGS on the cluster; the image's quota
//! entities matching a filter, as Kafka's ClientQuotasImage answers it. Each filter component
//! names an entity type once and matches a name exactly (EXACT), the default entity
//! (DEFAULT), or any name (SPECIFIED: the default too, as in Kafka); a `strict` filter also
//! wants the entity to have no other type. An empty filter matches everything unless strict.

use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::sb;
use crate::context::Broker;
use crate::error::KafkaError;
use crate::metadata::acl::AclOperation;
use crate::metadata::quota::{EntityName, QuotaEntity, CLIENT_ID, USER};

/// Kafka's match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// One checked component: which side of the entity, and what it must be.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// This name.
    Exact(String),
    /// The default entity.
    Default,
    /// Any name, the default included.
    Any,
}

/// A checked filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    user: Option<Want>,
    client_id: Option<Want>,
    ip: bool,
    strict: bool,
}

/// Handles DescribeClientQuotas.
pub async fn handle(
    b: &Broker,
    req: DescribeClientQuotasRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeClientQuotasResponse {
    let fail = |e: KafkaError| {
        DescribeClientQuotasResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(sb(e.to_string())))
            .with_entries(None)
    };
    if !ctx.authz.cluster(AclOperation::DescribeConfigs) {
        return fail(KafkaError::ClusterAuthorizationFailed(
            "DescribeClientQuotas needs DESCRIBE_CONFIGS on the cluster".into(),
        ));
    }
    let filter = match filter(&req.components, req.strict) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let image = b.controller.image();
    let entries = image
        .client_quotas
        .entities
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, keys)| {
            let mut parts = Vec::with_capacity(2);
            if let Some(u) = &entity.user {
                parts.push(part(USER, u));
            }
            if let Some(c) = &entity.client_id {
                parts.push(part(CLIENT_ID, c));
            }
            EntryData::default().with_entity(parts).with_values(
                keys.iter()
                    .map(|(k, v)| ValueData::default().with_key(sb(k.name())).with_value(*v))
                    .collect(),
            )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

fn part(kind: &str, name: &EntityName) -> EntityData {
    EntityData::default()
        .with_entity_type(sb(kind))
        .with_entity_name(name.wire().map(sb))
}

/// Checks a request's components (INVALID_REQUEST with Kafka's reasons).
pub fn filter(components: &[ComponentData], strict: bool) -> Result<Filter, KafkaError> {
    let invalid = |m: String| KafkaError::InvalidRequest(m);
    let mut f = Filter {
        user: None,
        client_id: None,
        ip: false,
        strict,
    };
    let mut ip = false;
    for c in components {
        let kind = c.entity_type.as_str();
        if kind.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        let want = match (c.match_type, &c._match) {
            (MATCH_EXACT, Some(name)) => Want::Exact(name.to_string()),
            (MATCH_EXACT, None) => {
                return Err(invalid(format!(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null for {kind}"
                )))
            }
            (MATCH_DEFAULT, None) => Want::Default,
            (MATCH_SPECIFIED, None) => Want::Any,
            (MATCH_DEFAULT | MATCH_SPECIFIED, Some(_)) => {
                return Err(invalid(format!(
                    "Request specified match type {}, but match string is not null for {kind}",
                    c.match_type
                )))
            }
            (other, _) => return Err(invalid(format!("Unknown match type {other}"))),
        };
        let slot = match kind {
            USER => &mut f.user,
            CLIENT_ID => &mut f.client_id,
            // No ip entity is ever stored (AlterClientQuotas refuses them): a filter naming
            // one matches nothing.
            "ip" => {
                if ip {
                    return Err(invalid(
                        "Entity type ip cannot appear more than once in the filter.".into(),
                    ));
                }
                ip = true;
                continue;
            }
            other => {
                return Err(KafkaError::UnsupportedVersion(format!(
                    "Unsupported entity type {other}"
                )))
            }
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "Entity type {kind} cannot appear more than once in the filter."
            )));
        }
        *slot = Some(want);
    }
    if ip && (f.user.is_some() || f.client_id.is_some()) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component."
                .into(),
        ));
    }
    f.ip = ip;
    Ok(f)
}

impl Filter {
    /// Whether an entity matches.
    pub fn matches(&self, entity: &QuotaEntity) -> bool {
        if self.ip {
            return false;
        }
        let side = |want: &Option<Want>, have: &Option<EntityName>| match (want, have) {
            // A type the filter does not name: fine unless the filter is strict.
            (None, Some(_)) => !self.strict,
            (None, None) => true,
            (Some(_), None) => false,
            (Some(Want::Any), Some(_)) => true,
            (Some(Want::Default), Some(n)) => *n == EntityName::Default,
            (Some(Want::Exact(w)), Some(n)) => *n == EntityName::Named(w.clone()),
        };
        side(&self.user, &entity.user) && side(&self.client_id, &entity.client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(kind: &str, match_type: i8, m: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(sb(kind))
            .with_match_type(match_type)
            .with_match(m.map(sb))
    }
    fn ent(user: Option<EntityName>, client: Option<EntityName>) -> QuotaEntity {
        QuotaEntity {
            user,
            client_id: client,
        }
    }

    #[test]
    fn filters_match_as_kafkas_image_does() {
        let alice = || Some(EntityName::Named("alice".into()));
        let app = || Some(EntityName::Named("app".into()));
        let alice_only = ent(alice(), None);
        let alice_app = ent(alice(), app());
        let default_user = ent(Some(EntityName::Default), None);
        let app_only = ent(None, app());

        let all = filter(&[], false).expect("valid");
        assert!([&alice_only, &alice_app, &default_user, &app_only]
            .iter()
            .all(|e| all.matches(e)));
        assert!(!filter(&[], true).expect("valid").matches(&alice_only));

        let exact = filter(&[comp(USER, MATCH_EXACT, Some("alice"))], false).expect("valid");
        assert!(exact.matches(&alice_only) && exact.matches(&alice_app));
        assert!(!exact.matches(&default_user) && !exact.matches(&app_only));
        let strict = filter(&[comp(USER, MATCH_EXACT, Some("alice"))], true).expect("valid");
        assert!(strict.matches(&alice_only) && !strict.matches(&alice_app));

        let default = filter(&[comp(USER, MATCH_DEFAULT, None)], false).expect("valid");
        assert!(default.matches(&default_user) && !default.matches(&alice_only));
        let any = filter(&[comp(USER, MATCH_SPECIFIED, None)], false).expect("valid");
        assert!(any.matches(&default_user) && any.matches(&alice_app) && !any.matches(&app_only));
    }

    #[test]
    fn bad_filters_are_invalid_requests() {
        for bad in [
            vec![comp(USER, MATCH_EXACT, None)],
            vec![comp(USER, MATCH_DEFAULT, Some("x"))],
            vec![comp(USER, 7, None)],
            vec![
                comp(USER, MATCH_SPECIFIED, None),
                comp(USER, MATCH_DEFAULT, None),
            ],
        ] {
            assert!(
                matches!(filter(&bad, false), Err(KafkaError::InvalidRequest(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            filter(&[comp("topic", MATCH_SPECIFIED, None)], false),
            Err(KafkaError::UnsupportedVersion(_))
        ));
    }
}
