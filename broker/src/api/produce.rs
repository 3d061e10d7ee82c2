//! Produce: validate and append record batches; acks=0 gets no response, acks=1 is answered
//! after the leader's append, acks=-1 once the high watermark has passed the appended batches
//! (they are in the log of every ISR member), or with REQUEST_TIMED_OUT after the request's
//! timeout. acks=-1 is refused with NOT_ENOUGH_REPLICAS before appending when the ISR is
//! smaller than `min.insync.replicas`, and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND when it
//! shrank below it by the time the write was committed. Waiting holds no lock: each partition
//! has a watch that its high watermark, leadership and ISR changes bump. A request older
//! than v7 carrying a zstd batch is refused with UNSUPPORTED_COMPRESSION_TYPE (KIP-110).

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use crate::context::Broker;
use crate::error::KafkaError;
use crate::log::LogError;
use crate::metadata::acl::AclOperation;
use crate::replica::Partition;
use crate::time::now_ms;
use crate::txn::verify::{TxnCheck, FIRST_ABORTABLE_PRODUCE, FIRST_V2_PRODUCE};
use crate::types::{LeaderEpoch, Offset};

/// The first Produce version allowed to carry zstd batches (KIP-110): older requests get
/// UNSUPPORTED_COMPRESSION_TYPE, as from Kafka, since their clients cannot read zstd back.
const ZSTD_MIN_VERSION: i16 = 7;

/// zstd's codec id in a batch's attributes.
const ZSTD_CODEC: i16 = 4;

/// Whether any batch of a produced record set is zstd-compressed. Only the headers are read; a
/// record set too damaged to walk is left to the log's validation (CORRUPT_MESSAGE).
fn has_zstd(records: Option<&[u8]>) -> bool {
    let mut rest = records.unwrap_or_default();
    while let Ok(h) = crate::log::batch::BatchHeader::parse(rest) {
        if h.compression() == ZSTD_CODEC {
            return true;
        }
        match rest.get(h.total_size()..) {
            Some(next) if h.total_size() > 0 => rest = next,
            _ => break,
        }
    }
    false
}

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

/// An acks=-1 append waiting for the high watermark: response slot, partition, end offset.
struct Pending {
    topic: usize,
    part: usize,
    partition: std::sync::Arc<Partition>,
    end: Offset,
    epoch: LeaderEpoch,
}

/// The first Produce version served; v0-2 (message formats 0 and 1, gone since Kafka 4.0) are
/// answered UNSUPPORTED_VERSION for every partition, nothing stored.
pub const FIRST_SERVED_VERSION: i16 = 3;

/// Handles Produce.
pub async fn handle(b: &Broker, req: ProduceRequest, version: i16, ctx: &super::Ctx<'_>) -> Reply {
    let acks = req.acks;
    if version < FIRST_SERVED_VERSION {
        return unsupported(req, version);
    }
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut pending: Vec<Pending> = Vec::new();
    // Once per request: a cut-off node refuses every partition alike.
    let cut_off = b.controller.is_cut_off();
    // A transactional produce needs WRITE on its transactional id (Kafka's rule), for the
    // whole request.
    let txn_refused = req.transactional_id.as_ref().is_some_and(|id| {
        !ctx.authz.allowed(
            AclOperation::Write,
            crate::metadata::acl::ResourceType::TransactionalId,
            id.as_str(),
        )
    });
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        // WRITE on the topic, once per topic (Kafka checks per topic too).
        let writable = ctx.authz.topic(AclOperation::Write, &name);
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let resp = PartitionProduceResponse::default().with_index(pd.index);
            let result = if txn_refused {
                Err(KafkaError::TransactionalIdAuthorizationFailed(format!(
                    "{} may not write with this transactional id",
                    ctx.principal
                )))
            } else if !writable {
                Err(KafkaError::TopicAuthorizationFailed(format!(
                    "{} may not write to topic {name}",
                    ctx.principal
                )))
            } else if !(-1..=1).contains(&acks) {
                Err(KafkaError::InvalidRequiredAcks(format!(
                    "acks must be -1, 0 or 1, got {acks}"
                )))
            } else if version < ZSTD_MIN_VERSION && has_zstd(pd.records.as_deref()) {
                Err(KafkaError::UnsupportedCompressionType(format!(
                    "zstd-compressed batches need Produce v{ZSTD_MIN_VERSION} or later, this request is v{version}"
                )))
            } else {
                append(
                    b,
                    &name,
                    pd.index,
                    pd.records.as_deref(),
                    acks == -1,
                    cut_off,
                    req.transactional_id.as_ref().map(|id| Transactional {
                        id: id.as_str(),
                        check: TxnCheck::of_request(version, FIRST_V2_PRODUCE),
                        abortable: version >= FIRST_ABORTABLE_PRODUCE,
                    }),
                )
                .await
            };
            b.metrics.produce_requests.with_label_values(&[&name]).inc();
            parts.push(match result {
                Ok((info, p, epoch)) => {
                    if acks == -1 {
                        pending.push(Pending {
                            topic: responses.len(),
                            part: parts.len(),
                            partition: p,
                            end: info.last_offset.next(),
                            epoch,
                        });
                    }
                    resp.with_base_offset(info.first_offset.0).with_log_append_time_ms(info.log_append_time).with_log_start_offset(if version >= 5 { info.log_start_offset.0 } else { -1 })
                }
                Err(e) => {
                    b.metrics.failed_produce_requests.with_label_values(&[&name]).inc();
                    tracing::debug!(topic = %name, partition = pd.index, error = %e, "produce refused");
                    // KIP-467: the records a rule refused, by index; a batch-level error
                    // (corrupt, too large, ...) names none, so clients fail the batch alike.
                    let record_errors = match &e {
                        KafkaError::Log(LogError::RecordsRejected(r)) => r
                            .errors
                            .iter()
                            .map(|re| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(re.batch_index)
                                    .with_batch_index_error_message(re.message.clone().map(super::sb))
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    let (code, message) = (e.code(), e.message());
                    let resp = resp.with_error_code(code).with_base_offset(-1);
                    // error_message and record_errors exist from v8 on.
                    if version >= 8 {
                        resp.with_error_message(message).with_record_errors(record_errors)
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
    if !pending.is_empty() {
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
        for w in pending {
            if let Err(e) = wait_replicated(b, &w, deadline).await {
                let t = &mut responses[w.topic];
                b.metrics
                    .failed_produce_requests
                    .with_label_values(&[t.name.0.as_str()])
                    .inc();
                tracing::debug!(partition = %w.partition.tp, error = %e, "acks=all produce not replicated");
                let p = &mut t.partition_responses[w.part];
                p.error_code = e.code();
                p.base_offset = -1;
                if version >= 8 {
                    p.error_message = e.message();
                }
            }
        }
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

type Appended = (
    crate::log::AppendInfo,
    std::sync::Arc<Partition>,
    LeaderEpoch,
);

/// Waits for an acks=all write like [`Partition::wait_replicated`], but gives up with
/// NOT_LEADER_OR_FOLLOWER once this node is cut off from the controllers: the controller has
/// then moved the leadership, and the write can never be replicated by this node's ISR.
async fn wait_replicated(
    b: &Broker,
    w: &Pending,
    deadline: tokio::time::Instant,
) -> Result<(), KafkaError> {
    // Slices short enough to notice the cut-off soon after it happens.
    const SLICE: std::time::Duration = std::time::Duration::from_millis(250);
    loop {
        let until = deadline.min(tokio::time::Instant::now() + SLICE);
        match w.partition.wait_replicated(w.end, w.epoch, until).await {
            Err(KafkaError::RequestTimedOut(_)) if until < deadline => {
                if b.controller.is_cut_off() {
                    return Err(KafkaError::NotLeaderOrFollower(format!(
                        "this node is cut off from the controllers and may no longer lead {}",
                        w.partition.tp
                    )));
                }
            }
            r => return r,
        }
    }
}

/// The transactional producer of a Produce request.
#[derive(Debug, Clone, Copy)]
struct Transactional<'a> {
    /// Its transactional id.
    id: &'a str,
    /// What its first write to a partition needs from the coordinator (by request version).
    check: TxnCheck,
    /// Whether the request version knows TRANSACTION_ABORTABLE (v11+).
    abortable: bool,
}

async fn append(
    b: &Broker,
    topic: &str,
    partition: i32,
    records: Option<&[u8]>,
    acks_all: bool,
    cut_off: bool,
    transactional: Option<Transactional<'_>>,
) -> Result<Appended, KafkaError> {
    if topic == crate::group::store::OFFSETS_TOPIC || topic == "__transaction_state" {
        // Clients must never write coordinator state (Kafka: "Cannot append to internal topic").
        return Err(KafkaError::InvalidTopic(format!(
            "Cannot append to internal topic {topic}"
        )));
    }
    if cut_off {
        return Err(KafkaError::NotLeaderOrFollower(format!(
            "this node is cut off from the controllers and may no longer lead {topic}-{partition}"
        )));
    }
    let p = b.replicas.leader(topic, partition)?;
    let records = records.ok_or_else(|| {
        KafkaError::Log(LogError::InvalidRecord(
            "produce request carries null records".into(),
        ))
    })?;
    if acks_all {
        p.check_enough_replicas()?;
    }
    // A transactions-v2 producer never adds partitions itself: the add is always made.
    let guard = match transactional {
        Some(t) if t.check == TxnCheck::Add || b.config.transactions.partition_verification => {
            verify_transaction(b, &p, t, records).await?
        }
        _ => None,
    };
    let (info, epoch) = match &guard {
        Some(g) => p.append_verified(records, now_ms(), g)?,
        None => p.append_as_leader(records, now_ms())?,
    };
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
    Ok((info, p, epoch))
}

/// KIP-890 part 1: the first transactional batch of a producer in this partition is appended
/// only if the transaction coordinator has the partition in the producer's ongoing
/// transaction; under part 2 (Produce v12+) the coordinator is asked to add it
/// (`txn/verify.rs`). Later batches of that transaction are not checked again: the
/// partition's producer state has the transaction open.
/// Returns the guard the append must hold (`replica::VerificationGuard`) when the
/// coordinator was asked.
async fn verify_transaction(
    b: &Broker,
    p: &std::sync::Arc<Partition>,
    txn: Transactional<'_>,
    records: &[u8],
) -> Result<Option<crate::replica::VerificationGuard>, KafkaError> {
    let transactional_id = txn.id;
    let Ok(h) = crate::log::batch::BatchHeader::parse(records) else {
        // Malformed: the append refuses it with the exact reason.
        return Ok(None);
    };
    if !h.is_transactional() || !h.has_producer_id() {
        return Ok(None);
    }
    let pid = crate::types::ProducerId(h.producer_id);
    let epoch = crate::types::ProducerEpoch(h.producer_epoch);
    if let Some(current) = crate::txn::verify::newer_epoch(p, pid, epoch) {
        return Err(KafkaError::Log(LogError::InvalidProducerEpoch {
            producer_id: pid,
            current,
            received: epoch,
        }));
    }
    if crate::txn::verify::has_ongoing(p, pid, epoch) {
        return Ok(None);
    }
    let guard = p.start_verification(pid)?;
    b.txns
        .verify_for_produce(transactional_id, pid, epoch, &p.tp, txn.check)
        .await
        .map_err(|code| {
            let code = if txn.check == TxnCheck::Verify {
                crate::txn::verify::not_in_transaction(code, txn.abortable)
            } else {
                code
            };
            KafkaError::TxnVerification(
                code,
                format!(
                    "{} is not in the ongoing transaction of producer {pid} ({transactional_id}) as its coordinator knows it",
                    p.tp
                ),
            )
        })?;
    Ok(Some(guard))
}

/// Produce v0-2: every partition UNSUPPORTED_VERSION, nothing stored; with acks=0 (no answer
/// expected) the connection is closed, as for any failed acks=0 produce.
fn unsupported(req: ProduceRequest, version: i16) -> Reply {
    if req.acks == 0 {
        return Reply::Close(format!(
            "acks=0 Produce v{version} refused: the first version served is v{FIRST_SERVED_VERSION}"
        ));
    }
    let code = kafka_protocol::error::ResponseError::UnsupportedVersion.code();
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|pd| {
                            PartitionProduceResponse::default()
                                .with_index(pd.index)
                                .with_error_code(code)
                                .with_base_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    Reply::Send(ProduceResponse::default().with_responses(responses))
}
