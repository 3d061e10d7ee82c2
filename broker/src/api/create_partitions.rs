//! CreatePartitions: grow a topic, with optional explicit placement.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use crate::context::Broker;
use crate::types::BrokerId;

/// Handles CreatePartitions.
pub async fn handle(
    b: &Broker,
    req: CreatePartitionsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    // KIP-599: strict from v3.
    let mut mutations = super::throttle::Mutations::new(b, ctx, version >= 3);
    for t in req.topics {
        results.push(
            async {
                let name = t.name.0.to_string();
                if !ctx
                    .authz
                    .topic(crate::metadata::acl::AclOperation::Alter, &name)
                {
                    let e = crate::error::KafkaError::TopicAuthorizationFailed(format!(
                        "{} may not alter topic {name}",
                        ctx.principal
                    ));
                    return CreatePartitionsTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(e.code())
                        .with_error_message(e.message());
                }
                let assignment = t.assignments.map(|a| {
                    a.into_iter()
                        .map(|x| x.broker_ids.into_iter().map(|id| BrokerId(id.0)).collect())
                        .collect()
                });
                let out = CreatePartitionsTopicResult::default().with_name(t.name);
                if let Err(e) = mutations.admit() {
                    return out
                        .with_error_code(e.code())
                        .with_error_message(e.message());
                }
                let before = b
                    .controller
                    .image()
                    .topics
                    .get(&name)
                    .map_or(0, |t| t.partitions.len());
                match b
                    .controller
                    .create_partitions(&name, t.count, assignment, req.validate_only)
                    .await
                {
                    Ok(()) => {
                        let added = usize::try_from(t.count).unwrap_or(0).saturating_sub(before);
                        mutations.record(u32::try_from(added).unwrap_or(u32::MAX));
                        if !req.validate_only {
                            tracing::info!(topic = %name, count = t.count, "added partitions");
                        }
                        out
                    }
                    Err(e) => out
                        .with_error_code(e.code())
                        .with_error_message(e.message()),
                }
            }
            .await,
        );
    }
    CreatePartitionsResponse::default()
        .with_results(results)
        .with_throttle_time_ms(mutations.throttle_ms())
}
