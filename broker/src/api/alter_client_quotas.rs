//! AlterClientQuotas (KIP-546): ALTER_CONFIGS on the cluster; each entry (an entity and its
//! operations) validated on its own as Kafka's ClientQuotaControlManager does (INVALID_REQUEST
//! with the reason), the valid entries committed to the metadata log together, all or none.
//! `validate_only` checks without committing.

use std::collections::BTreeSet;

use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as RespEntity, EntryData as RespEntry,
};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};

use super::sb;
use crate::context::Broker;
use crate::error::KafkaError;
use crate::metadata::acl::AclOperation;
use crate::metadata::quota::{
    EntityName, QuotaChange, QuotaEntity, QuotaKey, QuotaValue, CLIENT_ID, USER,
};

/// Most entries one request may carry.
pub const MAX_ENTRIES_PER_REQUEST: usize = 1000;
/// Longest user or client-id name an entity may have: names live in every metadata image.
pub const MAX_ENTITY_NAME: usize = 1024;

/// Handles AlterClientQuotas.
pub async fn handle(
    b: &Broker,
    req: AlterClientQuotasRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> AlterClientQuotasResponse {
    let refused = if req.entries.len() > MAX_ENTRIES_PER_REQUEST {
        Some(KafkaError::InvalidRequest(format!(
            "at most {MAX_ENTRIES_PER_REQUEST} quota entries per request"
        )))
    } else if !ctx.authz.cluster(AclOperation::AlterConfigs) {
        Some(KafkaError::ClusterAuthorizationFailed(
            "AlterClientQuotas needs ALTER_CONFIGS on the cluster".into(),
        ))
    } else {
        None
    };
    if let Some(e) = refused {
        return AlterClientQuotasResponse::default().with_entries(
            req.entries
                .iter()
                .map(|entry| result(entry, Some(&e)))
                .collect(),
        );
    }
    let mut seen: BTreeSet<QuotaEntity> = BTreeSet::new();
    let checked: Vec<Result<Vec<QuotaChange>, KafkaError>> = req
        .entries
        .iter()
        .map(|entry| {
            let changes = validate(entry)?;
            if let Some(first) = changes.first() {
                if !seen.insert(first.entity.clone()) {
                    return Err(KafkaError::InvalidRequest(format!(
                        "Entity {} appears more than once in the request",
                        first.entity
                    )));
                }
            }
            Ok(changes)
        })
        .collect();
    let valid: Vec<QuotaChange> = checked
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    let committed = if req.validate_only || valid.is_empty() {
        Ok(())
    } else {
        b.controller.alter_client_quotas(valid.clone()).await
    };
    if committed.is_ok() && !req.validate_only && !valid.is_empty() {
        tracing::info!(principal = %ctx.principal, changes = ?valid, "client quotas altered");
    }
    AlterClientQuotasResponse::default().with_entries(
        req.entries
            .iter()
            .zip(checked)
            .map(|(entry, r)| match (r, &committed) {
                (Err(e), _) => result(entry, Some(&e)),
                (Ok(_), Err(e)) => result(entry, Some(e)),
                (Ok(_), Ok(())) => result(entry, None),
            })
            .collect(),
    )
}

fn result(entry: &EntryData, error: Option<&KafkaError>) -> RespEntry {
    let mut r = RespEntry::default().with_entity(
        entry
            .entity
            .iter()
            .map(|e| {
                RespEntity::default()
                    .with_entity_type(e.entity_type.clone())
                    .with_entity_name(e.entity_name.clone())
            })
            .collect(),
    );
    if let Some(e) = error {
        r = r
            .with_error_code(e.code())
            .with_error_message(Some(sb(e.to_string())));
    }
    r
}

/// The entity of an entry, checked as Kafka checks it.
pub fn entity<'a>(
    parts: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<QuotaEntity, KafkaError> {
    let invalid = |m: String| KafkaError::InvalidRequest(m);
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
    };
    let mut any = false;
    for (kind, name) in parts {
        any = true;
        let name = match name {
            None => EntityName::Default,
            Some("") => return Err(invalid(format!("Empty {kind} not supported"))),
            Some(n) if n.len() > MAX_ENTITY_NAME => {
                return Err(invalid(format!(
                    "The {kind} name is longer than {MAX_ENTITY_NAME} bytes"
                )))
            }
            Some(n) => EntityName::Named(n.to_string()),
        };
        let slot =
            match kind {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                "ip" => return Err(invalid(
                    "ip entities (connection_creation_rate, KIP-612) are not supported by this \
                     broker"
                        .into(),
                )),
                other => {
                    return Err(invalid(format!(
                        "Unhandled client quota entity type: {other}"
                    )))
                }
            };
        if slot.is_some() {
            return Err(invalid(format!("Duplicate {kind} in the quota entity")));
        }
        *slot = Some(name);
    }
    if !any {
        return Err(invalid("Invalid empty client quota entity".into()));
    }
    Ok(entity)
}

/// Checks one value for `key` (Kafka's `validateQuotaKeyValue`).
pub fn value(key: QuotaKey, v: f64) -> Result<QuotaValue, String> {
    if !v.is_finite() {
        return Err(format!("Proposed value for {} is not a number", key.name()));
    }
    if v <= 0.0 {
        return Err(format!("Quota {} must be greater than 0", key.name()));
    }
    if key.is_integer() && v >= i64::MAX as f64 {
        return Err(format!(
            "Proposed value for {} is too large for a LONG.",
            key.name()
        ));
    }
    if key.is_integer() && v.fract().abs() > 1e-6 {
        return Err(format!("{} cannot be a fractional value.", key.name()));
    }
    Ok(QuotaValue(v))
}

fn validate(entry: &EntryData) -> Result<Vec<QuotaChange>, KafkaError> {
    let entity = entity(entry.entity.iter().map(|e| {
        (
            e.entity_type.as_str(),
            e.entity_name.as_ref().map(|n| n.as_str()),
        )
    }))?;
    let mut keys = BTreeSet::new();
    let mut changes = Vec::with_capacity(entry.ops.len().min(QuotaKey::ALL.len()));
    for op in &entry.ops {
        let Some(key) = QuotaKey::parse(op.key.as_str()) else {
            // Kafka checks no key on removal: removing what cannot be there is a no-op.
            if op.remove {
                continue;
            }
            return Err(KafkaError::InvalidRequest(format!(
                "Invalid configuration key {}",
                op.key.as_str()
            )));
        };
        if !keys.insert(key) {
            return Err(KafkaError::InvalidRequest(format!(
                "Duplicate quota key {} for entity {entity}",
                key.name()
            )));
        }
        let value = if op.remove {
            None
        } else {
            Some(value(key, op.value).map_err(KafkaError::InvalidRequest)?)
        };
        changes.push(QuotaChange {
            entity: entity.clone(),
            key,
            value,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_checked_as_kafka_does() {
        let e = |parts: &[(&str, Option<&str>)]| entity(parts.iter().copied());
        let ok = e(&[(USER, Some("alice")), (CLIENT_ID, None)]).expect("valid");
        assert_eq!(ok.user, Some(EntityName::Named("alice".into())));
        assert_eq!(ok.client_id, Some(EntityName::Default));
        for bad in [
            &[][..],
            &[(USER, Some(""))][..],
            &[(USER, Some("a")), (USER, Some("b"))][..],
            &[("group", Some("g"))][..],
            &[("ip", Some("127.0.0.1"))][..],
        ] {
            let err = e(bad).expect_err("invalid");
            assert!(
                matches!(err, KafkaError::InvalidRequest(_)),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn values_are_checked_per_key_type() {
        assert!(value(QuotaKey::ProducerByteRate, 1024.0).is_ok());
        assert!(value(QuotaKey::ProducerByteRate, 1024.5).is_err());
        assert!(value(QuotaKey::RequestPercentage, 12.5).is_ok());
        assert!(value(QuotaKey::ConsumerByteRate, 0.0).is_err());
        assert!(value(QuotaKey::RequestPercentage, -1.0).is_err());
        assert!(value(QuotaKey::RequestPercentage, f64::NAN).is_err());
    }
}
