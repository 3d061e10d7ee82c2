//! Group metadata and committed offsets as records in `__consumer_offsets`.
//!
//! Keys and values are small versioned JSON documents (readable with any Kafka consumer that
//! dumps the topic); a null value is a tombstone. The latest record for a key wins, so the
//! topic is compacted in spirit: replaying it from the start rebuilds every group.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// What a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordKey {
    /// A committed offset.
    Offset {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// A group's membership metadata.
    Group {
        /// Group id.
        group: String,
    },
    /// A consumer group of the KIP-848 protocol: its epochs, members and target assignment
    /// in one record (the latest wins; a tombstone when it becomes a classic group again).
    ConsumerGroup {
        /// Group id.
        group: String,
    },
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// Leader epoch of the committed position (-1 unknown).
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
}

/// A group's metadata as stored after each completed rebalance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupValue {
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// Members.
    pub members: Vec<StoredMember>,
    /// When the group last became Empty (ms), for offset expiry (KIP-211).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_since_ms: Option<i64>,
}

/// A decoded record: key and value (None = tombstone).
#[derive(Debug, Clone)]
pub enum StoredRecord {
    /// Offset commit or its deletion.
    Offset(String, String, i32, Option<OffsetValue>),
    /// Group metadata or its deletion.
    Group(String, Option<GroupValue>),
    /// A consumer group (KIP-848) or its end.
    ConsumerGroup(String, Option<Box<crate::group::consumer::ConsumerGroup>>),
}

/// One record to write.
pub struct Entry {
    /// Key.
    pub key: RecordKey,
    /// Value JSON, or None for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl Entry {
    /// An offset commit.
    pub fn offset(group: &str, topic: &str, partition: i32, v: &OffsetValue) -> Entry {
        Entry {
            key: RecordKey::Offset {
                group: group.into(),
                topic: topic.into(),
                partition,
            },
            value: serde_json::to_vec(v).ok(),
        }
    }

    /// An offset deletion.
    pub fn offset_tombstone(group: &str, topic: &str, partition: i32) -> Entry {
        Entry {
            key: RecordKey::Offset {
                group: group.into(),
                topic: topic.into(),
                partition,
            },
            value: None,
        }
    }

    /// Group metadata.
    pub fn group(group: &str, v: &GroupValue) -> Entry {
        Entry {
            key: RecordKey::Group {
                group: group.into(),
            },
            value: serde_json::to_vec(v).ok(),
        }
    }

    /// A consumer group (KIP-848) as it is now.
    pub fn consumer_group(g: &crate::group::consumer::ConsumerGroup) -> Entry {
        Entry {
            key: RecordKey::ConsumerGroup {
                group: g.id.clone(),
            },
            value: serde_json::to_vec(g).ok(),
        }
    }

    /// The end of a consumer group (deleted, or a classic group again).
    pub fn consumer_group_tombstone(group: &str) -> Entry {
        Entry {
            key: RecordKey::ConsumerGroup {
                group: group.into(),
            },
            value: None,
        }
    }

    /// A group deletion.
    pub fn group_tombstone(group: &str) -> Entry {
        Entry {
            key: RecordKey::Group {
                group: group.into(),
            },
            value: None,
        }
    }
}

/// Encodes entries as record batches (magic v2, uncompressed) ready for `append`.
pub fn encode(entries: &[Entry], now_ms: i64) -> anyhow::Result<Bytes> {
    encode_with(entries, now_ms, None)
}

/// Encodes a TxnOffsetCommit's entries as ONE transactional batch of the producer with base
/// sequence -1 (Kafka's NO_SEQUENCE), as Kafka's coordinator writes them: the batch opens the
/// producer's transaction in the partition, and its COMMIT/ABORT marker ends it. Appended with
/// `Partition::append_as_coordinator`.
pub fn encode_txn(
    entries: &[Entry],
    now_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
) -> anyhow::Result<Bytes> {
    encode_with(entries, now_ms, Some((producer_id, producer_epoch)))
}

/// Encodes entries, transactional for `producer` when given.
fn encode_with(
    entries: &[Entry],
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> anyhow::Result<Bytes> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Ok(Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder keeps records in one batch while offset - sequence is constant:
                // -1, 0, 1, ... gives one batch whose base sequence is -1 (NO_SEQUENCE). The
                // coordinator's own records keep -1 each, as they always were written.
                sequence: if producer.is_some() {
                    (i as i32).wrapping_sub(1)
                } else {
                    -1
                },
                timestamp: now_ms,
                key: Some(Bytes::from(serde_json::to_vec(&e.key)?)),
                value: e.value.clone().map(Bytes::from),
                headers: Default::default(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

/// What one stored batch holds.
#[derive(Debug, Clone)]
pub enum BatchContent {
    /// Group and offset records.
    Records(Vec<StoredRecord>),
    /// A transaction marker of the batch's producer: COMMIT (true) or ABORT (false).
    Marker(bool),
}

/// One stored batch, with what the replay of transactional offsets needs from its header.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    /// Offset of its first record: Kafka's `appendedBatchOffset`, which decides whether a
    /// committed transactional offset replaces a plain one.
    pub base_offset: i64,
    /// Its producer (-1 for the coordinator's own records).
    pub producer_id: i64,
    /// Whether it belongs to a transaction: its offset records stay pending until the
    /// producer's marker.
    pub transactional: bool,
    /// Its records or marker.
    pub content: BatchContent,
}

/// Decodes stored batches, records only (markers left out); see [`decode_batches`].
pub fn decode(bytes: Bytes) -> Vec<StoredRecord> {
    decode_batches(bytes)
        .into_iter()
        .flat_map(|b| match b.content {
            BatchContent::Records(r) => r,
            BatchContent::Marker(_) => Vec::new(),
        })
        .collect()
}

/// Decodes stored batches in log order; records that do not parse, and control batches that
/// are not transaction markers, are skipped with a warning (a newer or foreign format must
/// never stop the coordinator from loading).
pub fn decode_batches(bytes: Bytes) -> Vec<StoredBatch> {
    let mut out = Vec::new();
    // Batch by batch, each decompressed within `records::MAX_DECOMPRESSED_BATCH_BYTES`.
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (header, batch) = match crate::log::batch::BatchHeader::parse(rest) {
            Ok(h) if h.total_size() > 0 => (h, rest.get(..h.total_size()).unwrap_or(rest)),
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable batch in __consumer_offsets skipped");
                break;
            }
        };
        rest = &rest[batch.len()..];
        let content = if header.is_control() {
            match crate::log::batch::marker_commits(batch) {
                Some(commit) => BatchContent::Marker(commit),
                None => {
                    tracing::warn!(
                        offset = header.base_offset,
                        "control batch in __consumer_offsets that is not a transaction marker skipped"
                    );
                    continue;
                }
            }
        } else {
            match rill_client::records::decode_batch(batch) {
                Ok(set) => BatchContent::Records(decode_records(set.records)),
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable batch in __consumer_offsets skipped");
                    continue;
                }
            }
        };
        out.push(StoredBatch {
            base_offset: header.base_offset,
            producer_id: header.producer_id,
            transactional: header.is_transactional(),
            content,
        });
    }
    out
}

/// The group and offset records of one data batch.
fn decode_records(records: Vec<Record>) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    for r in records {
        if r.control {
            continue;
        }
        let Some(key) = r
            .key
            .as_ref()
            .and_then(|k| serde_json::from_slice::<RecordKey>(k).ok())
        else {
            tracing::warn!(
                offset = r.offset,
                "unreadable key in __consumer_offsets skipped"
            );
            continue;
        };
        match key {
            // Only a real null value is a tombstone; a value that does not parse is skipped,
            // so a damaged or foreign record can never delete a group.
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => match r.value.as_ref().map(|v| serde_json::from_slice(v)) {
                None => out.push(StoredRecord::Offset(group, topic, partition, None)),
                Some(Ok(v)) => out.push(StoredRecord::Offset(group, topic, partition, Some(v))),
                Some(Err(e)) => {
                    tracing::warn!(offset = r.offset, error = %e, "unreadable offset value in __consumer_offsets skipped")
                }
            },
            RecordKey::Group { group } => {
                match r.value.as_ref().map(|v| serde_json::from_slice(v)) {
                    None => out.push(StoredRecord::Group(group, None)),
                    Some(Ok(v)) => out.push(StoredRecord::Group(group, Some(v))),
                    Some(Err(e)) => {
                        tracing::warn!(offset = r.offset, error = %e, "unreadable group value in __consumer_offsets skipped")
                    }
                }
            }
            RecordKey::ConsumerGroup { group } => {
                match r.value.as_ref().map(|v| serde_json::from_slice(v)) {
                    None => out.push(StoredRecord::ConsumerGroup(group, None)),
                    Some(Ok(v)) => out.push(StoredRecord::ConsumerGroup(group, Some(Box::new(v)))),
                    Some(Err(e)) => {
                        tracing::warn!(offset = r.offset, error = %e, "unreadable consumer group value in __consumer_offsets skipped")
                    }
                }
            }
        }
    }
    out
}

/// The `__consumer_offsets` partition that owns a group: Java's `String.hashCode`, made
/// non-negative, modulo the partition count, so the mapping matches Kafka's.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// A member as persisted in the group metadata record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StoredMember {
    /// Member id.
    pub id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: u64,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: u64,
    /// Subscription metadata for the chosen protocol.
    #[serde(with = "hexbytes")]
    pub subscription: Bytes,
    /// Assignment.
    #[serde(with = "hexbytes")]
    pub assignment: Bytes,
}

/// Bytes as hex in JSON: readable with any Kafka tool dumping `__consumer_offsets`.
pub mod hexbytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a hex string.
    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(b.len() * 2);
        for x in b.iter() {
            out.push_str(&format!("{x:02x}"));
        }
        s.serialize_str(&out)
    }

    /// Parses a hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                s.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("bad hex"))
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        // Java: "ab".hashCode() == 3105; "polygenelubricants".hashCode() == Integer.MIN_VALUE,
        // which Kafka's Utils.abs maps to 0.
        assert_eq!(partition_for("ab", 50), 3105 % 50);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
        assert!((0..50).contains(&partition_for("some-group-with-a-long-name", 50)));
    }

    #[test]
    fn unreadable_values_are_skipped_not_tombstones() {
        let mut e = Entry::group(
            "g",
            &GroupValue {
                protocol_type: None,
                generation: 1,
                protocol: None,
                leader: None,
                members: vec![],
                empty_since_ms: None,
            },
        );
        e.value = Some(b"not-json".to_vec());
        let recs = decode(encode(&[e, Entry::group_tombstone("h")], 1).unwrap());
        assert_eq!(recs.len(), 1, "only the real tombstone is kept");
        assert!(matches!(&recs[0], StoredRecord::Group(g, None) if g == "h"));
    }

    #[test]
    fn records_round_trip() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 7,
        };
        let g = GroupValue {
            protocol_type: Some("consumer".into()),
            generation: 2,
            protocol: Some("range".into()),
            leader: Some("a".into()),
            members: vec![],
            empty_since_ms: Some(5),
        };
        let bytes = encode(
            &[
                Entry::offset("g", "t", 1, &v),
                Entry::group("g", &g),
                Entry::offset_tombstone("g", "t", 2),
                Entry::group_tombstone("h"),
            ],
            1,
        )
        .unwrap();
        let recs = decode(bytes);
        assert_eq!(recs.len(), 4);
        assert!(
            matches!(&recs[0], StoredRecord::Offset(gr, t, 1, Some(x)) if gr == "g" && t == "t" && x == &v)
        );
        assert!(matches!(&recs[1], StoredRecord::Group(gr, Some(x)) if gr == "g" && x == &g));
        assert!(matches!(&recs[2], StoredRecord::Offset(_, _, 2, None)));
        assert!(matches!(&recs[3], StoredRecord::Group(gr, None) if gr == "h"));
    }
}
