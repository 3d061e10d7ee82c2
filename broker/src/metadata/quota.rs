//! Client quotas of the metadata image (KIP-546, stored as Kafka's `ClientQuotaRecord`s are):
//! per entity (a user, a client id, or a user and a client id; either name may be the
//! *default* entity, which applies to every user or client without a quota of its own), the
//! four quota keys with their values. Replicated through the metadata log like topics, so
//! every broker throttles by the same quotas and they survive restarts and failovers.
//!
//! [`ClientQuotas::resolve`] answers which quota applies to one connection's user and client
//! id, in KIP-55's order of precedence (most specific first).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most quota entities the cluster holds: each is a few hundred bytes in every image, and an
/// operator with more entities than this is better served by default entities.
pub const MAX_QUOTA_ENTITIES: usize = 10_000;

/// Kafka's entity type names.
pub const USER: &str = "user";
/// Kafka's entity type names.
pub const CLIENT_ID: &str = "client-id";

/// One side of an entity: a name, or the default (`<default>` in kafka-configs.sh, a null
/// name on the wire).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    /// Applies to every user (client id) without an entity of its own.
    Default,
    /// One user (client id).
    Named(String),
}

impl EntityName {
    /// The wire form: `None` for the default.
    pub fn wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityName::Default => f.write_str("<default>"),
            EntityName::Named(n) => f.write_str(n),
        }
    }
}

/// A quota entity: a user, a client id, or both (at least one is set).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The `user` part (the principal's name, `ANONYMOUS` on unauthenticated listeners).
    pub user: Option<EntityName>,
    /// The `client-id` part.
    pub client_id: Option<EntityName>,
}

impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(u) = &self.user {
            write!(f, "user={u}")?;
            sep = ",";
        }
        if let Some(c) = &self.client_id {
            write!(f, "{sep}client-id={c}")?;
        }
        Ok(())
    }
}

/// The quota keys of user and client-id entities, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaKey {
    /// Bytes per second a producer may append (`producer_byte_rate`).
    ProducerByteRate,
    /// Bytes per second a consumer may fetch (`consumer_byte_rate`).
    ConsumerByteRate,
    /// Percent of one request thread's time (`request_percentage`).
    RequestPercentage,
    /// Partitions created or deleted per second (`controller_mutation_rate`, KIP-599).
    ControllerMutationRate,
}

impl QuotaKey {
    /// Every key, in Kafka's order.
    pub const ALL: [QuotaKey; 4] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
    ];

    /// Kafka's name of the key.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
            QuotaKey::RequestPercentage => "request_percentage",
            QuotaKey::ControllerMutationRate => "controller_mutation_rate",
        }
    }

    /// The key of a Kafka name.
    pub fn parse(name: &str) -> Option<QuotaKey> {
        QuotaKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether Kafka's config type for the key is LONG (whole numbers only).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            QuotaKey::ProducerByteRate | QuotaKey::ConsumerByteRate
        )
    }
}

/// A quota value. Kept as its bits so commands compare exactly (`Eq`), as the log needs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for QuotaValue {}

/// One change of an AlterClientQuotas request: set `key` of `entity` to `value`, or remove it
/// (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaChange {
    /// The entity.
    pub entity: QuotaEntity,
    /// The key.
    pub key: QuotaKey,
    /// The new value; `None` removes the key.
    pub value: Option<QuotaValue>,
}

/// Every entity's quotas. Entities without a key left are dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientQuotas {
    /// The entities, each with the keys it sets.
    pub entities: BTreeMap<QuotaEntity, BTreeMap<QuotaKey, f64>>,
}

/// The quota that applies to one connection for one key: its bound and the names the rate is
/// measured under (Kafka's metric tags: a default entity measures each user or client on its
/// own, so its tag is the actual name).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQuota {
    /// The bound (bytes/s, percent, or mutations/s).
    pub bound: f64,
    /// The `user` tag ("" when the quota is not per user).
    pub user: String,
    /// The `client-id` tag ("" when the quota is not per client id).
    pub client_id: String,
}

impl ClientQuotas {
    /// Applies changes in order (an entity left with no key disappears). Refused, changing
    /// nothing, when an entity is empty, a value is not a positive finite number, or the
    /// result would hold more than [`MAX_QUOTA_ENTITIES`].
    pub fn apply(&mut self, changes: &[QuotaChange]) -> Result<(), String> {
        for c in changes {
            if c.entity.user.is_none() && c.entity.client_id.is_none() {
                return Err("a quota entity needs a user or a client-id".into());
            }
            if let Some(v) = c.value {
                if !(v.0.is_finite() && v.0 > 0.0) {
                    return Err(format!(
                        "{} of {} must be a positive number, not {}",
                        c.key.name(),
                        c.entity,
                        v.0
                    ));
                }
            }
        }
        let mut next = self.entities.clone();
        for c in changes {
            match c.value {
                Some(v) => {
                    next.entry(c.entity.clone()).or_default().insert(c.key, v.0);
                }
                None => {
                    if let Some(keys) = next.get_mut(&c.entity) {
                        keys.remove(&c.key);
                        if keys.is_empty() {
                            next.remove(&c.entity);
                        }
                    }
                }
            }
        }
        if next.len() > MAX_QUOTA_ENTITIES {
            return Err(format!(
                "the cluster would hold {} quota entities, more than {MAX_QUOTA_ENTITIES}",
                next.len()
            ));
        }
        self.entities = next;
        Ok(())
    }

    /// Whether any entity sets `key`: without one, nothing is measured for it.
    pub fn any(&self, key: QuotaKey) -> bool {
        self.entities.values().any(|keys| keys.contains_key(&key))
    }

    /// The quota for `key` that applies to `user` and `client_id`, in KIP-55's precedence:
    /// user and client id, user and default client, user; default user and client id,
    /// default user and default client, default user; client id; default client. `None`:
    /// unlimited.
    pub fn resolve(&self, key: QuotaKey, user: &str, client_id: &str) -> Option<ResolvedQuota> {
        use EntityName::{Default, Named};
        let u = || Some(Named(user.to_string()));
        let c = || Some(Named(client_id.to_string()));
        // (entity, whether the user tag is kept, whether the client tag is kept)
        let order = [
            (u(), c(), true, true),
            (u(), Some(Default), true, true),
            (u(), None, true, false),
            (Some(Default), c(), true, true),
            (Some(Default), Some(Default), true, true),
            (Some(Default), None, true, false),
            (None, c(), false, true),
            (None, Some(Default), false, true),
        ];
        order
            .into_iter()
            .find_map(|(user_part, client_part, ut, ct)| {
                let entity = QuotaEntity {
                    user: user_part,
                    client_id: client_part,
                };
                let bound = *self.entities.get(&entity)?.get(&key)?;
                Some(ResolvedQuota {
                    bound,
                    user: if ut { user.to_string() } else { String::new() },
                    client_id: if ct {
                        client_id.to_string()
                    } else {
                        String::new()
                    },
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<EntityName>, client: Option<EntityName>) -> QuotaEntity {
        QuotaEntity {
            user,
            client_id: client,
        }
    }
    fn named(n: &str) -> Option<EntityName> {
        Some(EntityName::Named(n.into()))
    }
    fn set(e: QuotaEntity, key: QuotaKey, v: f64) -> QuotaChange {
        QuotaChange {
            entity: e,
            key,
            value: Some(QuotaValue(v)),
        }
    }

    #[test]
    fn resolution_follows_kip_55_precedence_per_key() {
        let mut q = ClientQuotas::default();
        let p = QuotaKey::ProducerByteRate;
        q.apply(&[
            set(entity(None, Some(EntityName::Default)), p, 8.0),
            set(entity(None, named("app")), p, 7.0),
            set(entity(Some(EntityName::Default), None), p, 6.0),
            set(entity(named("alice"), None), p, 3.0),
            set(entity(named("alice"), named("app")), p, 1.0),
            set(
                entity(named("alice"), None),
                QuotaKey::ConsumerByteRate,
                50.0,
            ),
        ])
        .expect("valid");
        let r = |user: &str, client: &str| q.resolve(p, user, client).map(|r| r.bound);
        assert_eq!(r("alice", "app"), Some(1.0));
        assert_eq!(r("alice", "other"), Some(3.0));
        // Default user beats any client entity.
        assert_eq!(r("bob", "app"), Some(6.0));
        // Per key: alice's consumer quota does not hide the producer precedence.
        let c = q
            .resolve(QuotaKey::ConsumerByteRate, "alice", "app")
            .expect("set");
        assert_eq!(
            (c.bound, c.user.as_str(), c.client_id.as_str()),
            (50.0, "alice", "")
        );
        assert_eq!(q.resolve(QuotaKey::ConsumerByteRate, "bob", "app"), None);
        // Client entities apply once no user entity matches; the default client measures
        // each client id on its own (its tag is the real name).
        let mut q2 = ClientQuotas::default();
        q2.apply(&[set(entity(None, Some(EntityName::Default)), p, 8.0)])
            .expect("valid");
        let d = q2.resolve(p, "bob", "c1").expect("default client");
        assert_eq!((d.user.as_str(), d.client_id.as_str()), ("", "c1"));
    }

    #[test]
    fn changes_remove_keys_and_refuse_bad_values_atomically() {
        let mut q = ClientQuotas::default();
        let e = entity(named("u"), None);
        q.apply(&[set(e.clone(), QuotaKey::RequestPercentage, 50.0)])
            .expect("valid");
        let before = q.clone();
        assert!(q
            .apply(&[
                set(e.clone(), QuotaKey::ProducerByteRate, 10.0),
                set(e.clone(), QuotaKey::ConsumerByteRate, -1.0),
            ])
            .is_err());
        assert_eq!(q, before);
        assert!(q
            .apply(&[set(entity(None, None), QuotaKey::ProducerByteRate, 1.0)])
            .is_err());
        q.apply(&[QuotaChange {
            entity: e,
            key: QuotaKey::RequestPercentage,
            value: None,
        }])
        .expect("remove");
        assert!(q.entities.is_empty());
        assert!(!q.any(QuotaKey::RequestPercentage));
    }
}
