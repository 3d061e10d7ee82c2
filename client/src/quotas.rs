//! Client quotas (KIP-546) as methods on [`Cluster`]: describe the quota entities matching a
//! filter, and set or remove quota values of entities. An entity is a user, a client id, or
//! both; `None` as a name is the *default* entity (`<default>` in Kafka's tools). Both
//! requests go to any node, as Kafka's admin client sends them (a KRaft broker forwards the
//! change to the controller).

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{ClientError, Cluster};

/// Kafka's quota keys for user and client-id entities.
pub const QUOTA_KEYS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];

/// The entity type of users (a principal's name).
pub const USER: &str = "user";
/// The entity type of client ids.
pub const CLIENT_ID: &str = "client-id";

/// A quota entity: the user part and the client-id part, each absent, the default
/// (`Some(None)`), or a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct QuotaEntity {
    /// `None`: no user part; `Some(None)`: the default user; `Some(Some(name))`.
    pub user: Option<Option<String>>,
    /// `None`: no client-id part; `Some(None)`: the default client id; `Some(Some(id))`.
    pub client_id: Option<Option<String>>,
}

impl QuotaEntity {
    /// Kafka's form of the entity: (entity type, name) pairs, user first; a `None` name is
    /// the default entity of that type.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(2);
        if let Some(u) = &self.user {
            out.push((USER, u.as_deref()));
        }
        if let Some(c) = &self.client_id {
            out.push((CLIENT_ID, c.as_deref()));
        }
        out
    }

    /// The entity of Kafka's (entity type, name) pairs; an entity type other than `user` and
    /// `client-id` (Kafka's `ip`: connection quotas), or one given twice, is refused.
    pub fn from_parts<'a>(
        parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, String> {
        let mut e = QuotaEntity::default();
        for (kind, name) in parts {
            let slot = match kind {
                USER => &mut e.user,
                CLIENT_ID => &mut e.client_id,
                other => return Err(format!("entity type {other:?} is not user or client-id")),
            };
            if slot.is_some() {
                return Err(format!("entity type {kind} is given twice"));
            }
            *slot = Some(name.map(str::to_string));
        }
        Ok(e)
    }

    /// True when the entity names neither a user nor a client id.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.client_id.is_none()
    }
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .parts()
            .into_iter()
            .map(|(t, n)| format!("{t}={}", n.unwrap_or("<default>")))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// How a filter component matches the names of its entity type (Kafka's match types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// `MATCH_TYPE_EXACT` (0): this name.
    Exact(String),
    /// `MATCH_TYPE_DEFAULT` (1): the default entity.
    Default,
    /// `MATCH_TYPE_SPECIFIED` (2): any entity of the type (Kafka's brokers match the default
    /// entity too).
    Specified,
}

impl QuotaMatch {
    fn wire(&self) -> (i8, Option<&str>) {
        match self {
            QuotaMatch::Exact(name) => (0, Some(name)),
            QuotaMatch::Default => (1, None),
            QuotaMatch::Specified => (2, None),
        }
    }
}

/// One component of a [`QuotaFilter`]: an entity type and how its name matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilterComponent {
    /// [`USER`] or [`CLIENT_ID`].
    pub entity_type: String,
    /// How the name matches.
    pub matching: QuotaMatch,
}

impl QuotaFilterComponent {
    /// A component for `entity_type`.
    pub fn new(entity_type: &str, matching: QuotaMatch) -> QuotaFilterComponent {
        QuotaFilterComponent {
            entity_type: entity_type.to_string(),
            matching,
        }
    }
}

/// Which entities DescribeClientQuotas answers with: those matching every component, and,
/// when `strict`, having no entity type the components do not name (Kafka's
/// `ClientQuotaFilter.containsOnly`; otherwise `contains`). No components and not strict:
/// every entity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaFilter {
    /// The components, at most one per entity type.
    pub components: Vec<QuotaFilterComponent>,
    /// Whether entities with other entity types are left out.
    pub strict: bool,
}

impl QuotaFilter {
    /// Every entity.
    pub fn all() -> QuotaFilter {
        QuotaFilter::default()
    }

    /// Entities matching `components`, whatever else they name.
    pub fn contains(components: Vec<QuotaFilterComponent>) -> QuotaFilter {
        QuotaFilter {
            components,
            strict: false,
        }
    }

    /// Entities matching `components` and naming no other entity type.
    pub fn contains_only(components: Vec<QuotaFilterComponent>) -> QuotaFilter {
        QuotaFilter {
            components,
            strict: true,
        }
    }

    /// Exactly `entity` (names matched exactly, defaults as defaults).
    pub fn entity(entity: &QuotaEntity) -> QuotaFilter {
        QuotaFilter::contains_only(
            entity
                .parts()
                .into_iter()
                .map(|(t, n)| {
                    QuotaFilterComponent::new(
                        t,
                        n.map_or(QuotaMatch::Default, |n| QuotaMatch::Exact(n.to_string())),
                    )
                })
                .collect(),
        )
    }

    fn request(&self) -> DescribeClientQuotasRequest {
        DescribeClientQuotasRequest::default()
            .with_components(
                self.components
                    .iter()
                    .map(|c| {
                        let (match_type, name) = c.matching.wire();
                        ComponentData::default()
                            .with_entity_type(sb(&c.entity_type))
                            .with_match_type(match_type)
                            .with_match(name.map(sb))
                    })
                    .collect(),
            )
            .with_strict(self.strict)
    }
}

/// One entity's quotas as the cluster describes them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EntityQuotas {
    /// The entity.
    pub entity: QuotaEntity,
    /// (key, value), in the cluster's order.
    pub values: Vec<(String, f64)>,
}

impl EntityQuotas {
    /// The value of `key`, when set.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// A change to one entity: keys to set and keys to remove.
#[derive(Debug, Clone, Default)]
pub struct QuotaAlteration {
    /// The entity.
    pub entity: QuotaEntity,
    /// Keys to set, with their values.
    pub set: Vec<(String, f64)>,
    /// Keys to remove.
    pub remove: Vec<String>,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The entities of a DescribeClientQuotas answer, by entity. Entities with another entity
/// type (Kafka's `ip`, connection-rate quotas) are not user/client quotas and are left out.
fn described(resp: DescribeClientQuotasResponse) -> Result<Vec<EntityQuotas>, ClientError> {
    ClientError::check(resp.error_code, resp.error_message.as_deref())?;
    let mut out: Vec<EntityQuotas> = resp
        .entries
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| {
            let entity = QuotaEntity::from_parts(
                e.entity
                    .iter()
                    .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
            )
            .ok()?;
            Some(EntityQuotas {
                entity,
                values: e
                    .values
                    .into_iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.entity.cmp(&b.entity));
    Ok(out)
}

fn alter_request(changes: &[QuotaAlteration], validate_only: bool) -> AlterClientQuotasRequest {
    let entries = changes
        .iter()
        .map(|c| {
            EntryData::default()
                .with_entity(
                    c.entity
                        .parts()
                        .into_iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(sb(t))
                                .with_entity_name(n.map(sb))
                        })
                        .collect(),
                )
                .with_ops(
                    c.set
                        .iter()
                        .map(|(k, v)| OpData::default().with_key(sb(k)).with_value(*v))
                        .chain(
                            c.remove
                                .iter()
                                .map(|k| OpData::default().with_key(sb(k)).with_remove(true)),
                        )
                        .collect(),
                )
        })
        .collect();
    AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(validate_only)
}

/// Each change's outcome from an AlterClientQuotas answer, matched by entity as Kafka's
/// admin client matches them (the answer's order is not promised).
fn altered(
    changes: &[QuotaAlteration],
    resp: AlterClientQuotasResponse,
) -> Vec<Result<(), ClientError>> {
    let answers: Vec<(Result<QuotaEntity, String>, i16, Option<String>)> = resp
        .entries
        .into_iter()
        .map(|e| {
            let entity = QuotaEntity::from_parts(
                e.entity
                    .iter()
                    .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
            );
            (entity, e.error_code, e.error_message.map(|m| m.to_string()))
        })
        .collect();
    changes
        .iter()
        .map(|c| {
            match answers
                .iter()
                .find(|(e, _, _)| e.as_ref().is_ok_and(|e| *e == c.entity))
            {
                Some((_, code, message)) => ClientError::check(*code, message.as_deref()),
                None => Err(ClientError::Protocol(format!(
                    "AlterClientQuotas answered nothing for {}",
                    c.entity
                ))),
            }
        })
        .collect()
}

impl Cluster {
    /// The user/client-id quota entities matching `filter`, by entity.
    pub async fn describe_client_quotas(
        &self,
        filter: &QuotaFilter,
    ) -> Result<Vec<EntityQuotas>, ClientError> {
        described(self.send_to_any(filter.request()).await?)
    }

    /// Applies `changes` (checked only, with `validate_only`); one result per change, in
    /// order, with the cluster's error and message where it refused one.
    pub async fn alter_client_quotas(
        &self,
        changes: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let resp = self
            .send_to_any(alter_request(changes, validate_only))
            .await?;
        Ok(altered(changes, resp))
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_client_quotas_response as ar;
    use kafka_protocol::messages::describe_client_quotas_response as dr;

    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(|u| u.map(str::to_string)),
            client_id: client.map(|c| c.map(str::to_string)),
        }
    }

    #[test]
    fn filters_carry_kafkas_match_types_and_strictness() {
        let req = QuotaFilter::entity(&entity(Some(Some("alice")), Some(None))).request();
        assert!(req.strict);
        let wire: Vec<(&str, i8, Option<&str>)> = req
            .components
            .iter()
            .map(|c| (c.entity_type.as_str(), c.match_type, c._match.as_deref()))
            .collect();
        assert_eq!(
            wire,
            vec![("user", 0, Some("alice")), ("client-id", 1, None)]
        );

        let req = QuotaFilter::contains(vec![QuotaFilterComponent::new(
            CLIENT_ID,
            QuotaMatch::Specified,
        )])
        .request();
        assert!(!req.strict);
        assert_eq!(req.components[0].match_type, 2);
        assert_eq!(req.components[0]._match, None);

        let all = QuotaFilter::all().request();
        assert!(all.components.is_empty() && !all.strict);
    }

    #[test]
    fn described_entities_keep_defaults_and_skip_other_types() {
        let part = |t: &str, n: Option<&str>| {
            dr::EntityData::default()
                .with_entity_type(sb(t))
                .with_entity_name(n.map(sb))
        };
        let value = |k: &str, v: f64| dr::ValueData::default().with_key(sb(k)).with_value(v);
        let resp = DescribeClientQuotasResponse::default().with_entries(Some(vec![
            dr::EntryData::default()
                .with_entity(vec![part("client-id", None)])
                .with_values(vec![value("producer_byte_rate", 1024.0)]),
            dr::EntryData::default()
                .with_entity(vec![part("ip", Some("10.0.0.1"))])
                .with_values(vec![value("connection_creation_rate", 5.0)]),
            dr::EntryData::default()
                .with_entity(vec![
                    part("user", Some("alice")),
                    part("client-id", Some("app")),
                ])
                .with_values(vec![
                    value("consumer_byte_rate", 2048.0),
                    value("request_percentage", 12.5),
                ]),
        ]));
        let got = described(resp).expect("no error");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].entity, entity(None, Some(None)));
        assert_eq!(got[0].entity.to_string(), "client-id=<default>");
        assert_eq!(got[0].get("producer_byte_rate"), Some(1024.0));
        assert_eq!(
            got[1].entity,
            entity(Some(Some("alice")), Some(Some("app")))
        );
        assert_eq!(got[1].get("request_percentage"), Some(12.5));
        assert_eq!(got[1].get("producer_byte_rate"), None);

        let refused = DescribeClientQuotasResponse::default()
            .with_error_code(42)
            .with_error_message(Some(sb("Invalid empty entity type.")));
        let e = described(refused).expect_err("refused");
        assert!(e.to_string().contains("Invalid empty entity type."), "{e}");
    }

    #[test]
    fn alterations_are_sent_as_ops_and_answered_by_entity() {
        let alice = entity(Some(Some("alice")), None);
        let dflt = entity(None, Some(None));
        let changes = vec![
            QuotaAlteration {
                entity: alice.clone(),
                set: vec![("producer_byte_rate".into(), 1024.0)],
                remove: vec!["consumer_byte_rate".into()],
            },
            QuotaAlteration {
                entity: dflt.clone(),
                set: vec![("controller_mutation_rate".into(), 5.0)],
                remove: vec![],
            },
        ];
        let req = alter_request(&changes, true);
        assert!(req.validate_only);
        let ops: Vec<(&str, f64, bool)> = req.entries[0]
            .ops
            .iter()
            .map(|o| (o.key.as_str(), o.value, o.remove))
            .collect();
        assert_eq!(
            ops,
            vec![
                ("producer_byte_rate", 1024.0, false),
                ("consumer_byte_rate", 0.0, true)
            ]
        );
        assert_eq!(req.entries[1].entity[0].entity_type.as_str(), "client-id");
        assert_eq!(req.entries[1].entity[0].entity_name, None);

        // Answered in the other order: each result still lands on its change.
        let answer = |e: &QuotaEntity, code: i16, msg: Option<&str>| {
            ar::EntryData::default()
                .with_error_code(code)
                .with_error_message(msg.map(sb))
                .with_entity(
                    e.parts()
                        .into_iter()
                        .map(|(t, n)| {
                            ar::EntityData::default()
                                .with_entity_type(sb(t))
                                .with_entity_name(n.map(sb))
                        })
                        .collect(),
                )
        };
        let resp = AlterClientQuotasResponse::default().with_entries(vec![
            answer(&dflt, 42, Some("controller_mutation_rate is not supported")),
            answer(&alice, 0, None),
        ]);
        let results = altered(&changes, resp);
        assert!(results[0].is_ok(), "{results:?}");
        let e = results[1].as_ref().expect_err("refused");
        assert!(
            e.to_string()
                .contains("controller_mutation_rate is not supported"),
            "{e}"
        );

        let none = altered(&changes, AlterClientQuotasResponse::default());
        assert!(none.iter().all(|r| r.is_err()));
    }

    #[test]
    fn entities_from_kafkas_parts() {
        let e =
            QuotaEntity::from_parts([("client-id", Some("app")), ("user", None)]).expect("valid");
        assert_eq!(e, entity(Some(None), Some(Some("app"))));
        assert_eq!(e.parts(), vec![("user", None), ("client-id", Some("app"))]);
        assert!(QuotaEntity::from_parts([("ip", Some("1.2.3.4"))]).is_err());
        assert!(QuotaEntity::from_parts([("user", Some("a")), ("user", None)]).is_err());
        assert!(QuotaEntity::default().is_empty());
    }
}
