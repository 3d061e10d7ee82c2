//! Produce: validate and append record batches; acks=0 gets no response, acks=1 and acks=-1
//! are answered once the append is durable in the page cache of the in-sync replicas (on a
//! single-replica partition that is the local append).

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::error::KafkaError;
use crate::log::LogError;
use crate::replica::manager::now_ms;
use crate::server::Broker;

/// What to do after a produce request.
pub enum Reply {
    /// Send this response.
    Send(ProduceResponse),
    /// acks=0 and everything appended: no response.
    Nothing,
    /// acks=0 and something failed: close the connection so the producer refreshes its
    /// metadata (Kafka does the same, since it cannot answer).
    Close(String),
}

/// Handles Produce.
pub async fn handle(b: &Broker, req: ProduceRequest, version: i16, _ctx: &super::Ctx<'_>) -> Reply {
    let acks = req.acks;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut appended = false;
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let resp = PartitionProduceResponse::default().with_index(pd.index);
            let result = if !(-1..=1).contains(&acks) {
                Err(KafkaError::InvalidRequiredAcks(format!(
                    "acks must be -1, 0 or 1, got {acks}"
                )))
            } else {
                append(b, &name, pd.index, pd.records.as_deref())
            };
            b.metrics.produce_requests.with_label_values(&[&name]).inc();
            parts.push(match result {
                Ok(info) => {
                    appended |= !info.duplicate;
                    resp.with_base_offset(info.first_offset.0).with_log_append_time_ms(info.log_append_time).with_log_start_offset(if version >= 5 { info.log_start_offset.0 } else { -1 })
                }
                Err(e) => {
                    b.metrics.failed_produce_requests.with_label_values(&[&name]).inc();
                    tracing::debug!(topic = %name, partition = pd.index, error = %e, "produce refused");
                    let record_errors = match &e {
                        KafkaError::Log(LogError::InvalidRecord(m)) | KafkaError::Log(LogError::CorruptMessage(m)) => {
                            vec![BatchIndexAndErrorMessage::default().with_batch_index(0).with_batch_index_error_message(Some(super::sb(m.clone())))]
                        }
                        _ => Vec::new(),
                    };
                    let resp = resp.with_error_code(e.code()).with_base_offset(-1);
                    // error_message and record_errors exist from v8 on.
                    if version >= 8 {
                        resp.with_error_message(e.message()).with_record_errors(record_errors)
                    } else {
                        resp
                    }
                }
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(parts),
        );
    }
    if appended {
        b.replicas.notify_append();
    }
    if acks == 0 {
        let failed = responses
            .iter()
            .flat_map(|t| {
                t.partition_responses
                    .iter()
                    .map(move |p| (t.name.0.to_string(), p))
            })
            .find(|(_, p)| p.error_code != 0);
        return match failed {
            Some((topic, p)) => Reply::Close(format!(
                "acks=0 produce to {topic}-{} failed with error {}",
                p.index, p.error_code
            )),
            None => Reply::Nothing,
        };
    }
    Reply::Send(ProduceResponse::default().with_responses(responses))
}

fn append(
    b: &Broker,
    topic: &str,
    partition: i32,
    records: Option<&[u8]>,
) -> Result<crate::log::AppendInfo, KafkaError> {
    if topic == crate::group::store::OFFSETS_TOPIC || topic == "__transaction_state" {
        // Clients must never write coordinator state (Kafka: "Cannot append to internal topic").
        return Err(KafkaError::InvalidTopic(format!(
            "Cannot append to internal topic {topic}"
        )));
    }
    let p = b.replicas.leader(topic, partition)?;
    let records = records.ok_or_else(|| {
        KafkaError::Log(LogError::InvalidRecord(
            "produce request carries null records".into(),
        ))
    })?;
    let info = p.append(records, now_ms())?;
    if !info.duplicate {
        b.metrics
            .bytes_in
            .with_label_values(&[topic])
            .inc_by(info.bytes as u64);
        b.metrics
            .messages_in
            .with_label_values(&[topic])
            .inc_by(info.record_count.max(0) as u64);
    }
    Ok(info)
}
