//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5, none here) and by timestamp.
//!
//! isolation_level (v2+; 0 before) picks the last fetchable offset, as in Kafka's
//! `Partition.fetchOffsetForTimestamp`: the high watermark for read_uncommitted, the last
//! stable offset for read_committed. LATEST answers it; a timestamp or max-timestamp lookup
//! that finds an offset at or past it answers no offset (-1), as Kafka's ReplicaManager does.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::context::Broker;
use crate::error::KafkaError;
use crate::replica::partition::FetchIsolation;

/// Handles ListOffsets.
pub async fn handle(
    b: &Broker,
    req: ListOffsetsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> ListOffsetsResponse {
    // Decoded as 0 (read_uncommitted) before v2.
    let isolation = FetchIsolation::for_consumer(req.isolation_level);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let describable = ctx
                .authz
                .topic(crate::metadata::acl::AclOperation::Describe, &name);
            let parts = t
                .partitions
                .iter()
                .map(|lp| {
                    let out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index);
                    if !describable {
                        return out
                            .with_error_code(
                                kafka_protocol::error::ResponseError::TopicAuthorizationFailed
                                    .code(),
                            )
                            .with_offset(-1)
                            .with_timestamp(-1);
                    }
                    let Some(isolation) = isolation else {
                        return out
                            .with_error_code(
                                kafka_protocol::error::ResponseError::InvalidRequest.code(),
                            )
                            .with_offset(-1)
                            .with_timestamp(-1);
                    };
                    match lookup(
                        b,
                        &name,
                        lp.partition_index,
                        lp.current_leader_epoch,
                        lp.timestamp,
                        isolation,
                    ) {
                        Ok((offset, ts, epoch)) => out
                            .with_offset(offset)
                            .with_timestamp(ts)
                            .with_leader_epoch(if version >= 4 { epoch } else { -1 }),
                        Err(e) => out
                            .with_error_code(e.code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// One partition's answer: (offset, timestamp, leader epoch), -1s for "no offset".
fn lookup(
    b: &Broker,
    topic: &str,
    partition: i32,
    client_epoch: i32,
    ts: i64,
    isolation: FetchIsolation,
) -> Result<(i64, i64, i32), KafkaError> {
    let p = b.replicas.leader(topic, partition)?;
    p.check_epoch(client_epoch)?;
    let epoch = p.leader_epoch().0;
    // Only what a fetch with this isolation could read is answered.
    let fetchable = |found: Option<(crate::types::Offset, i64)>| -> Result<_, KafkaError> {
        let last = p.fetchable_offset(isolation)?;
        Ok(match found {
            Some((o, t)) if o < last => (o.0, t, epoch),
            _ => (-1, -1, -1),
        })
    };
    Ok(match ts {
        -2 | -4 => (p.log_start_offset().0, -1, epoch),
        -1 => (p.fetchable_offset(isolation)?.0, -1, epoch),
        -3 => fetchable(p.with_log(|l| Ok(l.max_timestamp()))?)?,
        -5 => (-1, -1, -1),
        t if t >= 0 => fetchable(p.with_log(|l| l.offset_for_timestamp(t))?)?,
        other => {
            return Err(KafkaError::InvalidRequest(format!(
                "unknown ListOffsets timestamp {other}"
            )))
        }
    })
}
