//! Client quotas (KIP-546) as methods on [`Cluster`]: describe the quota entities matching a
//! filter, and set or remove quota values of entities. An entity is a user, a client id, or
//! both; `None` as a name is the *default* entity (`<default>` in Kafka's tools).

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;

use super::{ClientError, Cluster};

/// Kafka's quota keys for user and client-id entities.
pub const QUOTA_KEYS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];

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
    fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(2);
        if let Some(u) = &self.user {
            out.push(("user", u.as_deref()));
        }
        if let Some(c) = &self.client_id {
            out.push(("client-id", c.as_deref()));
        }
        out
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

/// One entity's quotas as the cluster describes them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EntityQuotas {
    /// The entity.
    pub entity: QuotaEntity,
    /// (key, value), in the cluster's order.
    pub values: Vec<(String, f64)>,
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

impl Cluster {
    /// The quota entities matching `filter` (every entity with the parts it names, exactly
    /// as given: a name, or the default; `Some(None)` parts also match), or all of them.
    /// Sent to any node, as Kafka's admin client does.
    pub async fn describe_client_quotas(
        &self,
        filter: Option<&QuotaEntity>,
    ) -> Result<Vec<EntityQuotas>, ClientError> {
        let components = filter.map_or_else(Vec::new, |f| {
            f.parts()
                .into_iter()
                .map(|(t, n)| {
                    ComponentData::default()
                        .with_entity_type(sb(t))
                        .with_match_type(if n.is_some() { 0 } else { 1 })
                        .with_match(n.map(sb))
                })
                .collect()
        });
        let req = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(false);
        let resp = self.send_to_any(req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        let mut out: Vec<EntityQuotas> = resp
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let mut entity = QuotaEntity::default();
                for p in e.entity {
                    let name = p.entity_name.map(|n| n.to_string());
                    match p.entity_type.as_str() {
                        "user" => entity.user = Some(name),
                        "client-id" => entity.client_id = Some(name),
                        _ => {}
                    }
                }
                EntityQuotas {
                    entity,
                    values: e
                        .values
                        .into_iter()
                        .map(|v| (v.key.to_string(), v.value))
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.entity.cmp(&b.entity));
        Ok(out)
    }

    /// Applies `changes` (checked only, with `validate_only`); one result per change, in
    /// order, with the cluster's error where it refused one.
    pub async fn alter_client_quotas(
        &self,
        changes: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
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
        let req = AlterClientQuotasRequest::default()
            .with_entries(entries)
            .with_validate_only(validate_only);
        let resp = self.send_to_any(req).await?;
        Ok(resp
            .entries
            .iter()
            .map(|e| ClientError::check(e.error_code, e.error_message.as_deref()))
            .collect())
    }
}
