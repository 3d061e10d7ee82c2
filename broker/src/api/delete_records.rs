//! DeleteRecords: advance a partition's log start offset (-1 means the high watermark).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::context::Broker;
use crate::error::KafkaError;
use crate::types::Offset;

/// Handles DeleteRecords.
pub async fn handle(
    b: &Broker,
    req: DeleteRecordsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let deletable = ctx
                .authz
                .topic(crate::metadata::acl::AclOperation::Delete, &name);
            let parts = t
                .partitions
                .iter()
                .map(|dp| {
                    let out = DeleteRecordsPartitionResult::default()
                        .with_partition_index(dp.partition_index);
                    if !deletable {
                        return out
                            .with_error_code(
                                kafka_protocol::error::ResponseError::TopicAuthorizationFailed
                                    .code(),
                            )
                            .with_low_watermark(-1);
                    }
                    match delete(b, &name, dp.partition_index, dp.offset) {
                        Ok(low) => out.with_low_watermark(low),
                        Err(e) => out.with_error_code(e.code()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

fn delete(b: &Broker, topic: &str, partition: i32, offset: i64) -> Result<i64, KafkaError> {
    let p = b.replicas.leader(topic, partition)?;
    if !p.with_log(|l| Ok(l.config().cleanup_delete))? {
        // Kafka: records of a compact-only topic are removed by the cleaner, never by request.
        return Err(KafkaError::PolicyViolation(format!("Records of the compacted topic {topic} cannot be deleted (cleanup.policy has no 'delete').")));
    }
    let hw = p.high_watermark();
    let target = if offset == -1 { hw } else { Offset(offset) };
    let low = p.with_log(|l| l.delete_records_before(target, hw))?;
    tracing::info!(partition = %p.tp, low_watermark = low.0, "deleted records");
    Ok(low.0)
}
