//! DeleteTopics, by name or (v6) by topic id.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::sb;
use crate::context::Broker;
use crate::error::KafkaError;

/// Handles DeleteTopics.
pub async fn handle(
    b: &Broker,
    req: DeleteTopicsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let cluster_delete = ctx
        .authz
        .cluster(crate::metadata::acl::AclOperation::Delete);
    let mut responses = Vec::new();
    // KIP-599: strict from v5.
    let mut mutations = super::throttle::Mutations::new(b, ctx, version >= 5);
    for (name, id) in wanted {
        responses.push(
            async {
                let name =
                    name.or_else(|| b.controller.image().topic_by_id(id).map(|t| t.name.clone()));
                let out = DeletableTopicResult::default()
                    .with_name(name.clone().map(|n| TopicName(sb(n))));
                let result = match &name {
                    None => Err(KafkaError::UnknownTopicId(format!(
                        "Topic id {id} does not exist."
                    ))),
                    // Kafka's controller: DELETE on the cluster covers every topic.
                    Some(n)
                        if !(cluster_delete
                            || ctx
                                .authz
                                .topic(crate::metadata::acl::AclOperation::Delete, n)) =>
                    {
                        Err(KafkaError::TopicAuthorizationFailed(format!(
                            "{} may not delete topic {n}",
                            ctx.principal
                        )))
                    }
                    Some(_) if !b.config.delete_topic_enable => {
                        Err(KafkaError::TopicDeletionDisabled(
                            "Topic deletion is disabled (delete.topic.enable=false).".into(),
                        ))
                    }
                    Some(n)
                        if b.controller
                            .image()
                            .topics
                            .get(n)
                            .is_some_and(|t| t.is_internal()) =>
                    {
                        Err(KafkaError::InvalidTopic(format!(
                            "Internal topic {n} cannot be deleted."
                        )))
                    }
                    Some(n) => match mutations.admit() {
                        Err(e) => Err(e),
                        Ok(()) => b.controller.delete_topic(n).await,
                    },
                };
                if let Ok(t) = &result {
                    mutations.record(u32::try_from(t.partitions.len()).unwrap_or(u32::MAX));
                }
                match result {
                    Ok(t) => {
                        tracing::info!(topic = %t.name, "deleted topic");
                        if version >= 6 {
                            out.with_topic_id(t.id)
                        } else {
                            out
                        }
                    }
                    Err(e) => {
                        let out = out.with_error_code(e.code());
                        if version >= 5 {
                            out.with_error_message(e.message())
                        } else {
                            out
                        }
                    }
                }
            }
            .await,
        );
    }
    DeleteTopicsResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(mutations.throttle_ms())
}
