//! Reading and writing a few records as an operator does from the console: fetch N records
//! of one partition from an offset (the message browser) and produce one record (a test
//! message). Not a consumer or producer: no groups, no batching, no retries beyond leader
//! moves.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{BrokerId, FetchRequest, ProduceRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::admin::{missing, topic_name};
use super::{ClientError, Cluster, TopicPartition};

/// Bytes asked for per Fetch round of the browser (records come back whole, so a record
/// larger than this still arrives: KIP-74).
const BROWSE_FETCH_BYTES: i32 = 1024 * 1024;
/// Fetch rounds per browse, so a partition of empty batches cannot keep us looping.
const BROWSE_MAX_ROUNDS: usize = 16;
/// Size of the record batch header up to and including the length field.
const BATCH_LENGTH_END: usize = 12;

/// One record as read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp in ms since the epoch.
    pub timestamp: i64,
    /// True when the broker set the timestamp (LogAppendTime).
    pub log_append_time: bool,
    /// Key bytes, `None` for a null key.
    pub key: Option<Bytes>,
    /// Value bytes, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers in record order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What a browse returned.
#[derive(Debug, Clone, Default)]
pub struct FetchedRecords {
    /// Records at or after the offset asked for, at most the number asked for.
    pub records: Vec<FetchedRecord>,
    /// The partition's high watermark at the time of the last fetch.
    pub high_watermark: i64,
    /// The partition's log start offset at the time of the last fetch (-1 if not reported).
    pub log_start_offset: i64,
}

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    /// Key, `None` for a null key.
    pub key: Option<Bytes>,
    /// Value, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl Cluster {
    /// Reads up to `max_records` records of `tp` starting at `offset`, from its leader, up
    /// to the high watermark (read_uncommitted, as a plain consumer sees them). Control
    /// records are skipped. OFFSET_OUT_OF_RANGE comes back as a Kafka error.
    pub async fn fetch_records(
        &self,
        tp: &TopicPartition,
        offset: i64,
        max_records: usize,
    ) -> Result<FetchedRecords, ClientError> {
        let md = self.metadata(Some(std::slice::from_ref(&tp.topic))).await?;
        let topic = md
            .topic(&tp.topic)
            .ok_or_else(|| missing("Metadata", &tp.topic))?;
        topic.error()?;
        let leader = topic
            .partitions
            .iter()
            .find(|p| p.partition == tp.partition)
            .ok_or_else(|| {
                ClientError::kafka(
                    kafka_protocol::error::ResponseError::UnknownTopicOrPartition,
                    format!("partition {tp} does not exist"),
                )
            })?
            .leader;
        if leader < 0 {
            return Err(ClientError::kafka(
                kafka_protocol::error::ResponseError::LeaderNotAvailable,
                format!("partition {tp} has no leader"),
            ));
        }
        let topic_id = topic.topic_id;
        let mut out = FetchedRecords {
            log_start_offset: -1,
            ..FetchedRecords::default()
        };
        let mut next = offset;
        for _ in 0..BROWSE_MAX_ROUNDS {
            let mut conn = self.connection(leader).await?;
            let version = conn.version_for::<FetchRequest>()?;
            let fetch_topic =
                FetchTopic::default().with_partitions(vec![FetchPartition::default()
                    .with_partition(tp.partition)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(BROWSE_FETCH_BYTES)]);
            let fetch_topic = if version >= 13 {
                fetch_topic.with_topic_id(topic_id)
            } else {
                fetch_topic.with_topic(topic_name(&tp.topic))
            };
            let mut req = FetchRequest::default()
                .with_max_wait_ms(0)
                .with_min_bytes(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![fetch_topic]);
            if version >= 3 {
                req = req.with_max_bytes(BROWSE_FETCH_BYTES);
            }
            if version < 15 {
                req = req.with_replica_id(BrokerId(-1));
            }
            let resp = conn.send_version(req, version).await?;
            ClientError::check(resp.error_code, None)?;
            let pd = resp
                .responses
                .into_iter()
                .flat_map(|t| t.partitions)
                .find(|p| p.partition_index == tp.partition)
                .ok_or_else(|| missing("Fetch", &tp.to_string()))?;
            ClientError::check(pd.error_code, Some(&format!("partition {tp}")))?;
            out.high_watermark = pd.high_watermark;
            out.log_start_offset = pd.log_start_offset;
            let records = pd.records.unwrap_or_default();
            let (decoded, last_offset) = decode_complete_batches(records)?;
            for r in decoded {
                if r.offset >= next && out.records.len() < max_records {
                    out.records.push(r);
                }
            }
            let Some(last) = last_offset else { break };
            next = last + 1;
            if out.records.len() >= max_records || next >= pd.high_watermark {
                break;
            }
        }
        Ok(out)
    }

    /// Produces one record to `tp` with acks=all; returns its offset.
    pub async fn produce_record(
        &self,
        tp: &TopicPartition,
        record: NewRecord,
    ) -> Result<i64, ClientError> {
        let md = self.metadata(Some(std::slice::from_ref(&tp.topic))).await?;
        let topic = md
            .topic(&tp.topic)
            .ok_or_else(|| missing("Metadata", &tp.topic))?;
        topic.error()?;
        let leader = topic
            .partitions
            .iter()
            .find(|p| p.partition == tp.partition)
            .map(|p| p.leader)
            .ok_or_else(|| {
                ClientError::kafka(
                    kafka_protocol::error::ResponseError::UnknownTopicOrPartition,
                    format!("partition {tp} does not exist"),
                )
            })?;
        if leader < 0 {
            return Err(ClientError::kafka(
                kafka_protocol::error::ResponseError::LeaderNotAvailable,
                format!("partition {tp} has no leader"),
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let headers: IndexMap<StrBytes, Option<Bytes>> = record
            .headers
            .into_iter()
            .map(|(k, v)| (StrBytes::from_string(k), v))
            .collect();
        let rec = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: now,
            key: record.key,
            value: record.value,
            headers,
        };
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            std::iter::once(&rec),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| ClientError::Protocol(format!("cannot encode the record: {e}")))?;
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(self.timeout_ms())
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&tp.topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(tp.partition)
                    .with_records(Some(buf.freeze()))])]);
        let resp = self.send_to(leader, req).await?;
        let p = resp
            .responses
            .iter()
            .filter(|t| *t.name.0 == *tp.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == tp.partition)
            .ok_or_else(|| missing("Produce", &tp.to_string()))?;
        ClientError::check(p.error_code, p.error_message.as_deref())?;
        Ok(p.base_offset)
    }
}

/// Decodes the complete record batches at the front of `records` (a fetch may end with a
/// partial batch, which is dropped); returns the data records and the last offset covered
/// by any decoded batch, control batches included, so the caller can fetch past them.
fn decode_complete_batches(
    mut records: Bytes,
) -> Result<(Vec<FetchedRecord>, Option<i64>), ClientError> {
    let mut out = Vec::new();
    let mut last_offset = None;
    while records.len() >= BATCH_LENGTH_END {
        let base_offset = (&records[0..8]).get_i64();
        let length = (&records[8..12]).get_i32();
        let Ok(length) = usize::try_from(length) else {
            return Err(ClientError::Protocol(format!(
                "record batch at offset {base_offset} has a negative length"
            )));
        };
        let total = BATCH_LENGTH_END + length;
        if records.len() < total {
            break;
        }
        let batch = records.split_to(total);
        // Decompressed within a bound: a broker's data is untrusted input too.
        let set = crate::records::decode_batch(&batch).map_err(|e| {
            ClientError::Protocol(format!(
                "cannot decode the batch at offset {base_offset}: {e}"
            ))
        })?;
        for r in set.records {
            last_offset = Some(last_offset.map_or(r.offset, |l: i64| l.max(r.offset)));
            if r.control {
                continue;
            }
            out.push(FetchedRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                log_append_time: r.timestamp_type == TimestampType::LogAppend,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok((out, last_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_trailing_batches_are_dropped() {
        let rec = |offset| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 1,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: IndexMap::new(),
        };
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, [rec(0), rec(1)].iter(), &opts).unwrap();
        let whole = buf.len();
        RecordBatchEncoder::encode(&mut buf, [rec(2)].iter(), &opts).unwrap();
        let mut bytes = buf.freeze();
        let cut = bytes.split_to(whole + 20);
        let (recs, last) = decode_complete_batches(cut).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(last, Some(1));
        let (none, last) = decode_complete_batches(Bytes::from_static(b"short")).unwrap();
        assert!(none.is_empty() && last.is_none());
    }
}
