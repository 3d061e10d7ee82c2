//! Transaction markers: Kafka's control batches that end a transaction (COMMIT or ABORT).
//!
//! A marker is a v2 batch with the transactional and control attribute bits, the producer's id
//! and epoch, base sequence -1 and one record whose key is `int16 version 0 | int16 type`
//! (0 = ABORT, 1 = COMMIT) and whose value is `int16 version 0 | int32 coordinatorEpoch`
//! (Kafka's `EndTransactionMarker`). Only the broker writes them (`append_control`); producers
//! may not (`batch::validate`). The batch is built with `kafka-protocol`'s encoder and the value
//! body with its `EndTxnMarker` message; the 2-byte version prefixes and the key have no type
//! in the crate, so they are the few bytes written here. Reading a marker back (rebuild at open,
//! follower appends, truncation) decodes the stored batch, bounded by `MAX_CONTROL_BATCH_BYTES`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::EndTxnMarker;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::error::LogError;
use crate::types::{CoordinatorEpoch, ProducerEpoch, ProducerId};

/// Largest control batch read back from the log. A marker is about 80 bytes; anything much
/// larger is not one of ours and is not decoded.
pub(crate) const MAX_CONTROL_BATCH_BYTES: usize = 4096;

/// Version of the control record key and of the marker value (Kafka writes 0).
const CONTROL_VERSION: i16 = 0;
/// Control record type of an ABORT marker.
const TYPE_ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
const TYPE_COMMIT: i16 = 1;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    /// Epoch of the coordinator that wrote it.
    pub coordinator_epoch: CoordinatorEpoch,
}

/// Encodes one marker batch (offset 0, no leader epoch yet: the append sets both).
pub(crate) fn encode(
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    marker: Marker,
    now_ms: i64,
) -> Result<Vec<u8>, LogError> {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(CONTROL_VERSION);
    key.put_i16(if marker.commit {
        TYPE_COMMIT
    } else {
        TYPE_ABORT
    });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(CONTROL_VERSION);
    EndTxnMarker::default()
        .with_coordinator_epoch(marker.coordinator_epoch.0)
        .encode(&mut value, 0)
        .map_err(|e| LogError::InvalidRecord(format!("encoding a marker: {e}")))?;
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: producer_id.0,
        producer_epoch: producer_epoch.0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        std::iter::once(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::InvalidRecord(format!("encoding a marker: {e}")))?;
    Ok(buf.to_vec())
}

/// Decodes the marker in a stored control batch (`batch` is the whole batch). `None` when the
/// batch is too large, does not decode or its record is not a version-0 COMMIT/ABORT marker
/// (Kafka's other control types, e.g. KRaft's, carry no transaction).
pub(crate) fn decode(batch: &[u8]) -> Option<Marker> {
    if batch.len() > MAX_CONTROL_BATCH_BYTES {
        return None;
    }
    let mut buf = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    let record = set.records.first()?;
    let mut key = record.key.clone()?;
    if key.remaining() < 4 || key.get_i16() != CONTROL_VERSION {
        return None;
    }
    let commit = match key.get_i16() {
        TYPE_ABORT => false,
        TYPE_COMMIT => true,
        _ => return None,
    };
    let mut value = record.value.clone()?;
    if value.remaining() < 2 || value.get_i16() != CONTROL_VERSION {
        return None;
    }
    let body = EndTxnMarker::decode(&mut value, 0).ok()?;
    Some(Marker {
        commit,
        coordinator_epoch: CoordinatorEpoch(body.coordinator_epoch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{validate_stored, BatchHeader};

    #[test]
    fn marker_round_trips_with_kafkas_layout() {
        let marker = Marker {
            commit: false,
            coordinator_epoch: CoordinatorEpoch(7),
        };
        let bytes = match encode(ProducerId(42), ProducerEpoch(3), marker, 1_234) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let h = match BatchHeader::parse(&bytes) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(h.attributes, 0x30, "transactional | control, CreateTime");
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, -1)
        );
        assert_eq!((h.record_count, h.last_offset_delta), (1, 0));
        assert_eq!((h.base_timestamp, h.max_timestamp), (1_234, 1_234));
        assert!(validate_stored(&bytes).is_ok(), "CRC and structure hold");
        // The record: key 00 00 | 00 00 (ABORT), value 00 00 | 00 00 00 07.
        assert!(bytes
            .windows(4 + 1 + 6)
            .any(|w| w == [0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 7]));
        assert_eq!(decode(&bytes), Some(marker));
        let commit = Marker {
            commit: true,
            coordinator_epoch: CoordinatorEpoch(0),
        };
        let bytes = encode(ProducerId(1), ProducerEpoch(0), commit, 0).unwrap_or_default();
        assert_eq!(decode(&bytes), Some(commit));
        assert_eq!(decode(&bytes[..bytes.len() - 3]), None, "short batch");
        assert_eq!(decode(&[]), None);
    }
}
