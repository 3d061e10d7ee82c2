//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5, none here) and by timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::context::Broker;
use crate::error::KafkaError;

/// Handles ListOffsets.
pub async fn handle(
    b: &Broker,
    req: ListOffsetsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> ListOffsetsResponse {
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
                    match lookup(
                        b,
                        &name,
                        lp.partition_index,
                        lp.current_leader_epoch,
                        lp.timestamp,
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

fn lookup(
    b: &Broker,
    topic: &str,
    partition: i32,
    client_epoch: i32,
    ts: i64,
) -> Result<(i64, i64, i32), KafkaError> {
    let p = b.replicas.leader(topic, partition)?;
    p.check_epoch(client_epoch)?;
    let epoch = p.leader_epoch().0;
    Ok(match ts {
        -2 | -4 => (p.log_start_offset().0, -1, epoch),
        -1 => (p.high_watermark().0, -1, epoch),
        -3 => match p.with_log(|l| Ok(l.max_timestamp()))? {
            Some((o, t)) => (o.0, t, epoch),
            None => (-1, -1, -1),
        },
        -5 => (-1, -1, -1),
        t if t >= 0 => match p.with_log(|l| l.offset_for_timestamp(t))? {
            Some((o, found)) if o < p.high_watermark() => (o.0, found, epoch),
            _ => (-1, -1, -1),
        },
        other => {
            return Err(KafkaError::InvalidRequest(format!(
                "unknown ListOffsets timestamp {other}"
            )))
        }
    })
}
