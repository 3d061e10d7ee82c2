//! DescribeUserScramCredentials (KIP-554): which SCRAM mechanisms each user has, with their
//! iterations (never salts or keys). No users named means every user with a credential; a
//! named user without one is RESOURCE_NOT_FOUND, a user named twice DUPLICATE_RESOURCE.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::sb;
use crate::context::Broker;
use crate::error::KafkaError;
use crate::security::sasl::ScramMechanism;

/// Handles DescribeUserScramCredentials.
pub async fn handle(
    b: &Broker,
    req: DescribeUserScramCredentialsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeUserScramCredentialsResponse {
    if !ctx
        .authz
        .cluster(crate::metadata::acl::AclOperation::Describe)
    {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
            )
            .with_error_message(Some(sb("needs DESCRIBE on the cluster")));
    }
    let image = b.controller.image();
    let named: Vec<String> = req
        .users
        .iter()
        .flatten()
        .map(|u| u.name.to_string())
        .collect();
    let users: Vec<String> = if named.is_empty() {
        image.scram_credentials.keys().cloned().collect()
    } else {
        named.clone()
    };
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &named {
        *count.entry(u.as_str()).or_default() += 1;
    }
    let mut results = Vec::new();
    let mut answered = std::collections::BTreeSet::new();
    for user in &users {
        if !answered.insert(user.clone()) {
            continue;
        }
        let result = DescribeUserScramCredentialsResult::default().with_user(sb(user.clone()));
        let error = if count.get(user.as_str()).copied().unwrap_or(0) > 1 {
            Some(KafkaError::DuplicateResource(format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            )))
        } else {
            None
        };
        let result = match (error, image.scram_credentials.get(user)) {
            (Some(e), _) => result
                .with_error_code(e.code())
                .with_error_message(Some(sb(e.to_string()))),
            (None, None) => {
                let e = KafkaError::ResourceNotFound(format!(
                    "Attempt to describe a user credential that does not exist: {user}"
                ));
                result
                    .with_error_code(e.code())
                    .with_error_message(Some(sb(e.to_string())))
            }
            (None, Some(creds)) => result.with_credential_infos(
                creds
                    .iter()
                    .filter_map(|(mech, c)| {
                        Some(
                            CredentialInfo::default()
                                .with_mechanism(ScramMechanism::from_name(mech)?.type_id())
                                .with_iterations(i32::try_from(c.iterations).unwrap_or(i32::MAX)),
                        )
                    })
                    .collect(),
            ),
        };
        results.push(result);
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
