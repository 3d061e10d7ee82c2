//! The `__transaction_state` records, byte for byte Kafka's (`TransactionLogKey.json`,
//! `TransactionLogValue.json`, `TransactionLog.scala`).
//!
//! Unlike `__consumer_offsets` (JSON in Rill), these use Kafka's binary message encoding: the
//! structs are tiny and fixed, and matching them lets `kafka-dump-log
//! --transaction-log-decoder` read Rill's topic. Key and value are each an int16 version
//! followed by the struct:
//!
//! ```text
//! key v0   = TransactionalId: string (int16 length + UTF-8)
//! value v0 = ProducerId int64 | ProducerEpoch int16 | TransactionTimeoutMs int32
//!            | TransactionStatus int8
//!            | TransactionPartitions: nullable array (int32 count, -1 = null)
//!                of { Topic string, PartitionIds array of int32 }
//!            | TransactionLastUpdateTimestampMs int64 | TransactionStartTimestampMs int64
//! value v1 = the same fields, flexible: compact strings and arrays (unsigned varint length
//!            + 1, 0 = null), a tagged-field section after each struct; tags of the value:
//!            0 PreviousProducerId int64 (-1), 1 NextProducerId int64 (-1),
//!            2 ClientTransactionVersion int16 (0), 3 NextProducerEpoch int16 (-1, not read)
//! null value = tombstone: the id expired
//! ```
//!
//! Rill writes v0 while the `transaction.version` feature is 0 (as Kafka 3.x) and v1 from
//! level 1 (as Kafka 4), and reads both. In v1 it writes tag 2 as Kafka 4.1 does and also tags
//! 0 and 1 (Kafka only from KAFKA-20310): without the next producer id a coordinator that
//! takes over a Prepare record whose epochs ran out would complete it on the old id. A
//! record is untrusted input (a damaged segment, a foreign writer): every length and count is
//! checked against the bytes left before anything is read or allocated, and a record that
//! does not parse exactly (truncated, trailing bytes, negative lengths, invalid UTF-8, an
//! unknown status) is an error, never a panic. Keys of another version are skipped, as Kafka
//! skips them; values of an unknown version are errors, as in Kafka.

use std::collections::BTreeSet;

use crate::types::{ProducerEpoch, ProducerId, TopicPartition};

use super::state::{Transit, TxnMetadata, TxnState, TxnVersion, NO_PRODUCER_ID};

/// The internal topic's name.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// The only key version (`TransactionLogKey` v0).
pub const KEY_VERSION: i16 = 0;
/// The value version Kafka 3.x writes (non-flexible).
pub const VALUE_V0: i16 = 0;
/// The flexible value version (written by Kafka with `transaction.version` >= 1; read here).
pub const VALUE_V1: i16 = 1;
/// The longest string Kafka's message encoding allows (bytes of UTF-8).
pub const MAX_STRING_BYTES: usize = i16::MAX as usize;

/// Tag of `PreviousProducerId` in a v1 value.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
/// Tag of `NextProducerId` in a v1 value.
const TAG_NEXT_PRODUCER_ID: u32 = 1;
/// Tag of `ClientTransactionVersion` in a v1 value.
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;
/// The most bytes of an unsigned varint holding a u32.
const MAX_VARINT_BYTES: usize = 5;

/// The `__transaction_state` partition that owns a transactional id: Kafka's
/// `Utils.abs(id.hashCode) % transaction.state.log.num.partitions`, the same hash as the
/// groups' (one implementation, `group::store::partition_for`).
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::store::partition_for(transactional_id, partitions)
}

/// Why a record could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record ends before a field does.
    #[error("truncated record: {what} needs {needed} bytes, {left} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        left: usize,
    },
    /// The record is malformed (a bad length, bad UTF-8, an unknown status, bytes after it).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A value version this broker cannot read.
    #[error("unknown __transaction_state value version {0}")]
    UnknownValueVersion(i16),
    /// Something that cannot be written (a state never persisted, a string too long).
    #[error("cannot encode: {0}")]
    Unencodable(String),
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// One topic's partitions in a value record (`PartitionsSchema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition indexes, as stored.
    pub partitions: Vec<i32>,
}

/// A decoded (or to be encoded) value record: the fields of `TransactionLogValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// `ProducerId`.
    pub producer_id: ProducerId,
    /// `ProducerEpoch`.
    pub producer_epoch: ProducerEpoch,
    /// `TransactionTimeoutMs`.
    pub txn_timeout_ms: i32,
    /// `TransactionStatus`.
    pub state: TxnState,
    /// `TransactionPartitions`, grouped by topic; null (None) in Empty.
    pub partitions: Option<Vec<TopicPartitions>>,
    /// `TransactionLastUpdateTimestampMs`.
    pub last_update_ms: i64,
    /// `TransactionStartTimestampMs` (-1 when none).
    pub txn_start_ms: i64,
    /// `PreviousProducerId` (v1 tag 0; -1 otherwise): the id a rotation moved from.
    pub previous_producer_id: ProducerId,
    /// `NextProducerId` (v1 tag 1; -1 otherwise): the id a transactions-v2 Prepare record
    /// completes on when the epochs ran out.
    pub next_producer_id: ProducerId,
    /// `ClientTransactionVersion` (v1 tag 2; 0 otherwise).
    pub client_transaction_version: i16,
}

impl TxnLogValue {
    /// The record of a transit, as Kafka 3.x writes it: partitions grouped by topic (in name
    /// order, partitions ascending), null in Empty. Dead is written as a tombstone and a
    /// PrepareEpochFence never, so neither has a value; neither has Empty with partitions.
    pub fn from_transit(t: &Transit) -> Result<TxnLogValue, StoreError> {
        let partitions = match t.state {
            TxnState::Dead | TxnState::PrepareEpochFence => {
                return Err(StoreError::Unencodable(format!(
                    "{} is never written as a value",
                    t.state
                )))
            }
            TxnState::Empty if !t.topic_partitions.is_empty() => {
                return Err(StoreError::Unencodable("Empty with partitions".to_string()))
            }
            TxnState::Empty => None,
            _ => {
                let mut grouped: Vec<TopicPartitions> = Vec::new();
                for tp in &t.topic_partitions {
                    match grouped.last_mut() {
                        Some(g) if g.topic == tp.topic => g.partitions.push(tp.partition),
                        _ => grouped.push(TopicPartitions {
                            topic: tp.topic.clone(),
                            partitions: vec![tp.partition],
                        }),
                    }
                }
                Some(grouped)
            }
        };
        Ok(TxnLogValue {
            producer_id: t.producer_id,
            producer_epoch: t.producer_epoch,
            txn_timeout_ms: t.txn_timeout_ms,
            state: t.state,
            partitions,
            last_update_ms: t.last_update_ms,
            txn_start_ms: t.txn_start_ms,
            // Only a rotation's: the same id as the producer's carries nothing.
            previous_producer_id: if t.last_producer_id == t.producer_id {
                NO_PRODUCER_ID
            } else {
                t.last_producer_id
            },
            next_producer_id: t.next_producer_id,
            client_transaction_version: t.client_txn_version.0,
        })
    }

    /// The metadata a coordinator loads from this record (Kafka's `readTxnRecordValue`): no
    /// last producer id or epoch (not stored in v0), partitions only outside Empty. A
    /// non-Empty record without partitions is corrupt (Kafka cannot load it either).
    pub fn into_metadata(self, transactional_id: &str) -> Result<TxnMetadata, StoreError> {
        let partitions = match (self.state, self.partitions) {
            (TxnState::Empty, _) => BTreeSet::new(),
            (_, None) => {
                return Err(corrupt(format!(
                    "{} record of {transactional_id} without partitions",
                    self.state
                )))
            }
            (_, Some(p)) => p
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic;
                    t.partitions
                        .into_iter()
                        .map(move |p| TopicPartition::new(topic.clone(), p))
                })
                .collect(),
        };
        Ok(TxnMetadata::loaded(
            transactional_id,
            self.producer_id,
            NO_PRODUCER_ID,
            self.producer_epoch,
            self.txn_timeout_ms,
            self.state,
            partitions,
            self.txn_start_ms,
            self.last_update_ms,
        )
        .with_v2_fields(
            self.previous_producer_id,
            self.next_producer_id,
            TxnVersion(self.client_transaction_version),
        ))
    }
}

/// One decoded record: an id and its value, or its tombstone (`value: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// The transactional id (the key).
    pub transactional_id: String,
    /// The value; None is a tombstone (the id expired).
    pub value: Option<TxnLogValue>,
}

/// The value version of `t` while this broker's `transaction.version` is at `level`: Kafka's
/// `transactionLogValueVersion` (flexible from level 1), and flexible also for a
/// transactions-v2 transition at level 0. `transaction.version` is each broker's property, so
/// a coordinator at 0 can serve v2 clients another broker announced it to, and a v0 value
/// would drop the next producer id an epoch overflow hands over to.
pub fn value_version(level: TxnVersion, t: &Transit) -> i16 {
    let v2 = t.client_txn_version.supports_epoch_bump() || t.next_producer_id != NO_PRODUCER_ID;
    if level >= TxnVersion::TV1 || v2 {
        VALUE_V1
    } else {
        VALUE_V0
    }
}

/// The key and value (None: tombstone) of the record that persists `t` for
/// `transactional_id`, the value at `value_version` (see [`value_version`]).
pub fn encode_transit(
    transactional_id: &str,
    t: &Transit,
    value_version: i16,
) -> Result<(Vec<u8>, Option<Vec<u8>>), StoreError> {
    let key = encode_key(transactional_id)?;
    if t.state == TxnState::Dead {
        return Ok((key, None));
    }
    let value = encode_value(&TxnLogValue::from_transit(t)?, value_version)?;
    Ok((key, Some(value)))
}

/// Decodes one record's key and value (None: a null value). `Ok(None)`: a key of another
/// version, to skip.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<Option<TxnRecord>, StoreError> {
    let Some(transactional_id) = decode_key(key)? else {
        return Ok(None);
    };
    let value = value.map(decode_value).transpose()?;
    Ok(Some(TxnRecord {
        transactional_id,
        value,
    }))
}

/// Encodes a key (v0).
pub fn encode_key(transactional_id: &str) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    put_i16(&mut out, KEY_VERSION);
    put_string(&mut out, transactional_id)?;
    Ok(out)
}

/// Decodes a key: `Ok(None)` for a version other than 0 (Kafka skips those with a warning).
pub fn decode_key(bytes: &[u8]) -> Result<Option<String>, StoreError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("key version")?;
    if version != KEY_VERSION {
        return Ok(None);
    }
    let id = r.string("TransactionalId")?;
    r.finish()?;
    Ok(Some(id))
}

/// Encodes a value at `version` (0 or 1). Tagged fields of v1 are written only when they
/// differ from their defaults, as Kafka does.
pub fn encode_value(v: &TxnLogValue, version: i16) -> Result<Vec<u8>, StoreError> {
    let flexible = match version {
        VALUE_V0 => false,
        VALUE_V1 => true,
        other => return Err(StoreError::UnknownValueVersion(other)),
    };
    let mut out = Vec::with_capacity(64);
    put_i16(&mut out, version);
    put_i64(&mut out, v.producer_id.0);
    put_i16(&mut out, v.producer_epoch.0);
    put_i32(&mut out, v.txn_timeout_ms);
    out.push(v.state.id() as u8);
    match &v.partitions {
        None if flexible => put_uvarint(&mut out, 0),
        None => put_i32(&mut out, -1),
        Some(topics) => {
            put_array_len(&mut out, topics.len(), flexible)?;
            for t in topics {
                if flexible {
                    put_compact_string(&mut out, &t.topic)?;
                } else {
                    put_string(&mut out, &t.topic)?;
                }
                put_array_len(&mut out, t.partitions.len(), flexible)?;
                for p in &t.partitions {
                    put_i32(&mut out, *p);
                }
                if flexible {
                    put_uvarint(&mut out, 0); // no tagged fields in PartitionsSchema
                }
            }
        }
    }
    put_i64(&mut out, v.last_update_ms);
    put_i64(&mut out, v.txn_start_ms);
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != NO_PRODUCER_ID {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                v.previous_producer_id.0.to_be_bytes().to_vec(),
            ));
        }
        if v.next_producer_id != NO_PRODUCER_ID {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                v.next_producer_id.0.to_be_bytes().to_vec(),
            ));
        }
        if v.client_transaction_version != 0 {
            tags.push((
                TAG_CLIENT_TRANSACTION_VERSION,
                v.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        put_uvarint(&mut out, tags.len() as u32);
        for (tag, data) in tags {
            put_uvarint(&mut out, tag);
            put_uvarint(&mut out, data.len() as u32);
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Decodes a (non-null) value of version 0 or 1.
pub fn decode_value(bytes: &[u8]) -> Result<TxnLogValue, StoreError> {
    let mut r = Reader::new(bytes);
    let version = r.i16("value version")?;
    let flexible = match version {
        VALUE_V0 => false,
        VALUE_V1 => true,
        other => return Err(StoreError::UnknownValueVersion(other)),
    };
    let producer_id = ProducerId(r.i64("ProducerId")?);
    let producer_epoch = ProducerEpoch(r.i16("ProducerEpoch")?);
    let txn_timeout_ms = r.i32("TransactionTimeoutMs")?;
    let status = r.i8("TransactionStatus")?;
    let state = TxnState::from_id(status)
        .ok_or_else(|| corrupt(format!("unknown TransactionStatus {status}")))?;
    // Smallest topic entry: an empty string and an empty array (plus its tag section).
    let min_topic = if flexible { 3 } else { 6 };
    let partitions = match r.array_len("TransactionPartitions", min_topic, flexible)? {
        None => None,
        Some(n) => {
            let mut topics = Vec::with_capacity(n);
            for _ in 0..n {
                let topic = if flexible {
                    r.compact_string("Topic")?
                } else {
                    r.string("Topic")?
                };
                let count = r
                    .array_len("PartitionIds", 4, flexible)?
                    .ok_or_else(|| corrupt("null PartitionIds"))?;
                let mut partitions = Vec::with_capacity(count);
                for _ in 0..count {
                    partitions.push(r.i32("PartitionIds")?);
                }
                if flexible {
                    r.tagged_fields(|_, _| Ok(()))?;
                }
                topics.push(TopicPartitions { topic, partitions });
            }
            Some(topics)
        }
    };
    let last_update_ms = r.i64("TransactionLastUpdateTimestampMs")?;
    let txn_start_ms = r.i64("TransactionStartTimestampMs")?;
    let mut v = TxnLogValue {
        producer_id,
        producer_epoch,
        txn_timeout_ms,
        state,
        partitions,
        last_update_ms,
        txn_start_ms,
        previous_producer_id: NO_PRODUCER_ID,
        next_producer_id: NO_PRODUCER_ID,
        client_transaction_version: 0,
    };
    if flexible {
        r.tagged_fields(|tag, data| {
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => v.previous_producer_id = ProducerId(fixed_i64(data)?),
                TAG_NEXT_PRODUCER_ID => v.next_producer_id = ProducerId(fixed_i64(data)?),
                TAG_CLIENT_TRANSACTION_VERSION => {
                    let b: [u8; 2] = data
                        .try_into()
                        .map_err(|_| corrupt("ClientTransactionVersion is not 2 bytes"))?;
                    v.client_transaction_version = i16::from_be_bytes(b);
                }
                _ => {} // unknown tags are skipped, as Kafka keeps them unread
            }
            Ok(())
        })?;
    }
    r.finish()?;
    Ok(v)
}

fn fixed_i64(data: &[u8]) -> Result<i64, StoreError> {
    let b: [u8; 8] = data
        .try_into()
        .map_err(|_| corrupt("tagged int64 is not 8 bytes"))?;
    Ok(i64::from_be_bytes(b))
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn check_string(s: &str) -> Result<(), StoreError> {
    if s.len() > MAX_STRING_BYTES {
        return Err(StoreError::Unencodable(format!(
            "a string of {} bytes (at most {MAX_STRING_BYTES})",
            s.len()
        )));
    }
    Ok(())
}

fn put_string(out: &mut Vec<u8>, s: &str) -> Result<(), StoreError> {
    check_string(s)?;
    put_i16(out, s.len() as i16);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_compact_string(out: &mut Vec<u8>, s: &str) -> Result<(), StoreError> {
    check_string(s)?;
    put_uvarint(out, s.len() as u32 + 1);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_array_len(out: &mut Vec<u8>, n: usize, flexible: bool) -> Result<(), StoreError> {
    let n = i32::try_from(n)
        .ok()
        .filter(|n| *n < i32::MAX)
        .ok_or_else(|| StoreError::Unencodable(format!("an array of {n} elements")))?;
    if flexible {
        put_uvarint(out, n as u32 + 1);
    } else {
        put_i32(out, n);
    }
    Ok(())
}

/// A cursor over untrusted bytes: every read is checked against what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], StoreError> {
        if n > self.rest.len() {
            return Err(StoreError::Truncated {
                what,
                needed: n,
                left: self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], StoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn i8(&mut self, what: &'static str) -> Result<i8, StoreError> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, StoreError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, StoreError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, StoreError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u32, StoreError> {
        let mut v: u32 = 0;
        for i in 0..MAX_VARINT_BYTES {
            let b = self.take(1, what)?[0];
            let bits = u32::from(b & 0x7f);
            if i == MAX_VARINT_BYTES - 1 && bits > 0x0f {
                return Err(corrupt(format!("{what}: varint overflows 32 bits")));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt(format!("{what}: varint longer than 5 bytes")))
    }

    fn utf8(&mut self, n: usize, what: &'static str) -> Result<String, StoreError> {
        if n > MAX_STRING_BYTES {
            return Err(corrupt(format!(
                "{what}: length {n} above {MAX_STRING_BYTES}"
            )));
        }
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("{what}: invalid UTF-8")))
    }

    /// A non-nullable string (int16 length).
    fn string(&mut self, what: &'static str) -> Result<String, StoreError> {
        let n = self.i16(what)?;
        let n = usize::try_from(n).map_err(|_| corrupt(format!("{what}: length {n}")))?;
        self.utf8(n, what)
    }

    /// A non-nullable compact string (unsigned varint length + 1).
    fn compact_string(&mut self, what: &'static str) -> Result<String, StoreError> {
        let n = self.uvarint(what)?;
        let n = n
            .checked_sub(1)
            .ok_or_else(|| corrupt(format!("{what}: null in a non-nullable string")))?;
        self.utf8(n as usize, what)
    }

    /// An array's element count (None: null), refused when the bytes left could not hold
    /// that many elements of at least `min_element` bytes, so no count is trusted.
    fn array_len(
        &mut self,
        what: &'static str,
        min_element: usize,
        flexible: bool,
    ) -> Result<Option<usize>, StoreError> {
        let n: usize = if flexible {
            match self.uvarint(what)? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i32(what)? {
                -1 => return Ok(None),
                n => usize::try_from(n).map_err(|_| corrupt(format!("{what}: count {n}")))?,
            }
        };
        if n.saturating_mul(min_element) > self.rest.len() {
            return Err(StoreError::Truncated {
                what,
                needed: n.saturating_mul(min_element),
                left: self.rest.len(),
            });
        }
        Ok(Some(n))
    }

    /// A tagged-field section: a count, then (tag, size, data) each; `f` sees each field.
    fn tagged_fields(
        &mut self,
        mut f: impl FnMut(u32, &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let count = self.uvarint("tagged field count")?;
        // Each field takes at least two bytes (tag and size).
        if (count as usize).saturating_mul(2) > self.rest.len() {
            return Err(StoreError::Truncated {
                what: "tagged fields",
                needed: (count as usize).saturating_mul(2),
                left: self.rest.len(),
            });
        }
        for _ in 0..count {
            let tag = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            let data = self.take(size as usize, "tagged field")?;
            f(tag, data)?;
        }
        Ok(())
    }

    /// The record must end here.
    fn finish(self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(corrupt(format!(
                "{} bytes after the record",
                self.rest.len()
            )))
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
