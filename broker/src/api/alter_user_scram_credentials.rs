//! AlterUserScramCredentials (KIP-554): the client sends a salt and the *salted* password, the
//! broker derives SCRAM's StoredKey and ServerKey from them and stores only those in the
//! metadata log. Per-user results with Kafka's rules (`ScramControlManager`): an empty user or
//! iterations outside 4096..=16384 is UNACCEPTABLE_CREDENTIAL, an unknown mechanism
//! UNSUPPORTED_SASL_MECHANISM, the same user and mechanism twice DUPLICATE_RESOURCE,
//! deleting what is not there RESOURCE_NOT_FOUND; a user with any error changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};

use super::sb;
use crate::context::Broker;
use crate::error::KafkaError;
use crate::metadata::security::{ScramDeletion, ScramUpsert, StoredScram};
use crate::security::sasl::{ScramCredential, ScramMechanism};

/// The most credential changes one request may carry.
pub const MAX_CHANGES_PER_REQUEST: usize = 1000;

/// Handles AlterUserScramCredentials.
pub async fn handle(
    b: &Broker,
    req: AlterUserScramCredentialsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> AlterUserScramCredentialsResponse {
    let mut errors: BTreeMap<String, KafkaError> = BTreeMap::new();
    // Every user the request names, in order of first mention: one result each.
    let mut named = BTreeSet::new();
    let order: Vec<String> = req
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(req.upsertions.iter().map(|u| u.name.to_string()))
        .filter(|u| named.insert(u.clone()))
        .collect();
    let refused = if req.deletions.len() + req.upsertions.len() > MAX_CHANGES_PER_REQUEST {
        Some(KafkaError::InvalidRequest(format!(
            "at most {MAX_CHANGES_PER_REQUEST} credential changes per request"
        )))
    } else if !ctx.authz.cluster(crate::metadata::acl::AclOperation::Alter) {
        Some(KafkaError::ClusterAuthorizationFailed(
            "needs ALTER on the cluster".into(),
        ))
    } else {
        None
    };
    if let Some(e) = refused {
        return response(order.into_iter().map(|u| (u, Some(&e))));
    }
    let image = b.controller.image();
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let mut deletions = Vec::new();
    let mut upserts = Vec::new();
    for d in &req.deletions {
        let user = d.name.to_string();
        match check(&user, d.mechanism, &mut seen) {
            Err(e) => {
                errors.entry(user).or_insert(e);
            }
            Ok(mech) => {
                let exists = image
                    .scram_credentials
                    .get(&user)
                    .is_some_and(|m| m.contains_key(mech.name()));
                if !exists {
                    errors.entry(user).or_insert(KafkaError::ResourceNotFound(
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                } else {
                    deletions.push(ScramDeletion {
                        user,
                        mechanism: mech.name().to_string(),
                    });
                }
            }
        }
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        let checked = check(&user, u.mechanism, &mut seen).and_then(|mech| {
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            ScramCredential::from_salted_password(mech, &u.salted_password, &u.salt, iterations)
                .map_err(|e| KafkaError::UnacceptableCredential(e.to_string()))
        });
        match checked {
            Err(e) => {
                errors.entry(user).or_insert(e);
            }
            Ok(c) => upserts.push(ScramUpsert {
                user,
                mechanism: c.mechanism.name().to_string(),
                credential: StoredScram {
                    salt: c.salt,
                    iterations: c.iterations,
                    stored_key: c.stored_key,
                    server_key: c.server_key,
                },
            }),
        }
    }
    // A user with any error changes nothing (Kafka applies a request's users all or nothing
    // each).
    deletions.retain(|d| !errors.contains_key(&d.user));
    upserts.retain(|u| !errors.contains_key(&u.user));
    if !deletions.is_empty() || !upserts.is_empty() {
        let changed: BTreeSet<String> = deletions
            .iter()
            .map(|d| d.user.clone())
            .chain(upserts.iter().map(|u| u.user.clone()))
            .collect();
        match b
            .controller
            .alter_scram_credentials(upserts, deletions)
            .await
        {
            Ok(()) => {
                tracing::info!(principal = %ctx.principal, users = ?changed, "SCRAM credentials changed");
            }
            Err(e) => {
                for u in changed {
                    errors.insert(u, KafkaError::Unknown(e.to_string()));
                }
            }
        }
    }
    response(order.into_iter().map(|u| {
        let e = errors.get(&u);
        (u, e)
    }))
}

/// The mechanism of a change, refusing empty users, unknown mechanisms and repeats.
fn check(
    user: &str,
    mechanism: i8,
    seen: &mut BTreeSet<(String, i8)>,
) -> Result<ScramMechanism, KafkaError> {
    if user.is_empty() {
        return Err(KafkaError::UnacceptableCredential(
            "Username must not be empty".into(),
        ));
    }
    let mech = ScramMechanism::from_type_id(mechanism).ok_or_else(|| {
        KafkaError::UnsupportedSaslMechanism(format!("Unknown SCRAM mechanism type {mechanism}"))
    })?;
    if !seen.insert((user.to_string(), mechanism)) {
        return Err(KafkaError::DuplicateResource(
            "A user credential cannot be altered twice in the same request".into(),
        ));
    }
    Ok(mech)
}

fn response<'a>(
    results: impl Iterator<Item = (String, Option<&'a KafkaError>)>,
) -> AlterUserScramCredentialsResponse {
    AlterUserScramCredentialsResponse::default().with_results(
        results
            .map(|(user, e)| {
                AlterUserScramCredentialsResult::default()
                    .with_user(sb(user))
                    .with_error_code(e.map_or(0, KafkaError::code))
                    .with_error_message(e.map(|e| sb(e.to_string())))
            })
            .collect(),
    )
}
