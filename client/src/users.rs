//! SCRAM users (KIP-554) as methods on [`Cluster`]: describe which mechanisms a user has,
//! set a password (salted here: only the salted password crosses the wire, and the broker
//! keeps only keys derived from it), delete a mechanism.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::admin::ItemResult;
use super::security::{salted_password, SaslMechanism};
use super::{ClientError, Cluster};

/// Iterations used when none are given (Kafka's tools default to 4096).
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// One user's SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScramUser {
    /// The user name.
    pub user: String,
    /// (mechanism, iterations) pairs.
    pub credentials: Vec<(String, i32)>,
}

/// A credential change.
#[derive(Debug, Clone)]
pub enum ScramChange {
    /// Set `password` for `user` under `mechanism`.
    Upsert {
        /// The user.
        user: String,
        /// A SCRAM mechanism.
        mechanism: SaslMechanism,
        /// PBKDF2 iterations (4096..=16384 as Kafka accepts).
        iterations: u32,
        /// The password, salted before it is sent.
        password: String,
    },
    /// Remove `user`'s credential for `mechanism`.
    Delete {
        /// The user.
        user: String,
        /// A SCRAM mechanism.
        mechanism: SaslMechanism,
    },
}

impl Cluster {
    /// Users with SCRAM credentials (all of them when `users` is empty).
    pub async fn describe_scram_users(
        &self,
        users: &[String],
    ) -> Result<Vec<ScramUser>, ClientError> {
        let req = DescribeUserScramCredentialsRequest::default().with_users(if users.is_empty() {
            None
        } else {
            Some(
                users
                    .iter()
                    .map(|u| UserName::default().with_name(StrBytes::from_string(u.clone())))
                    .collect(),
            )
        });
        let resp = self.send_to_controller(req).await?;
        ClientError::check(resp.error_code, resp.error_message.as_deref())?;
        resp.results
            .into_iter()
            .map(|r| {
                ClientError::check(r.error_code, r.error_message.as_deref())?;
                Ok(ScramUser {
                    user: r.user.to_string(),
                    credentials: r
                        .credential_infos
                        .iter()
                        .map(|c| {
                            let name = SaslMechanism::from_scram_type(c.mechanism).map_or_else(
                                || format!("type {}", c.mechanism),
                                |m| m.name().to_string(),
                            );
                            (name, c.iterations)
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// Applies credential changes; one result per user, in order of first mention.
    pub async fn alter_scram_users(
        &self,
        changes: &[ScramChange],
    ) -> Result<Vec<ItemResult>, ClientError> {
        use rand::RngCore;
        let mut req = AlterUserScramCredentialsRequest::default();
        for c in changes {
            match c {
                ScramChange::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => {
                    let mut salt = vec![0u8; 32];
                    rand::thread_rng().fill_bytes(&mut salt);
                    let salted = salted_password(*mechanism, password, &salt, *iterations);
                    req.upsertions.push(
                        ScramCredentialUpsertion::default()
                            .with_name(StrBytes::from_string(user.clone()))
                            .with_mechanism(mechanism.scram_type().unwrap_or(0))
                            .with_iterations(i32::try_from(*iterations).unwrap_or(i32::MAX))
                            .with_salt(salt.into())
                            .with_salted_password(salted.into()),
                    );
                }
                ScramChange::Delete { user, mechanism } => req.deletions.push(
                    ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_string(user.clone()))
                        .with_mechanism(mechanism.scram_type().unwrap_or(0)),
                ),
            }
        }
        let resp = self.send_to_controller(req).await?;
        Ok(resp
            .results
            .into_iter()
            .map(|r| {
                (
                    r.user.to_string(),
                    ClientError::check(r.error_code, r.error_message.as_deref()),
                )
            })
            .collect())
    }
}
