//! Tests of the partition log, with helpers to build batches the way clients do (through
//! `kafka-protocol`'s encoder).

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::{self, BatchHeader};
use super::{LogConfig, PartitionLog};
use crate::types::{LeaderEpoch, Offset};

mod append_read;
mod batch_format;
mod compaction;
mod compaction_txn;
mod producers;
mod recovery;
mod retention;
mod stable_offset;
mod timestamps;
mod transactions;

/// What a test batch looks like.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    pub records: usize,
    pub timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub compression: Compression,
    pub value_len: usize,
    pub transactional: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            records: 1,
            timestamp: 1_000,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            compression: Compression::None,
            value_len: 10,
            transactional: false,
        }
    }
}

/// One encoded batch: `records` records with timestamps `timestamp + i`.
pub(super) fn build(spec: Spec) -> Vec<u8> {
    let records: Vec<Record> = (0..spec.records)
        .map(|i| Record {
            transactional: spec.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: spec.producer_id,
            producer_epoch: spec.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Sequences must advance with offsets or the encoder splits the batch.
            sequence: spec.base_sequence.wrapping_add(i as i32),
            timestamp: spec.timestamp + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; spec.value_len])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: spec.compression,
    };
    if let Err(e) = RecordBatchEncoder::encode(&mut buf, records.iter(), &options) {
        panic!("encoding a test batch failed: {e}");
    }
    buf.to_vec()
}

/// A plain batch of `n` records stamped from `ts`.
pub(super) fn plain(n: usize, ts: i64) -> Vec<u8> {
    build(Spec {
        records: n,
        timestamp: ts,
        ..Spec::default()
    })
}

/// A batch of an idempotent producer.
pub(super) fn idempotent(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    build(Spec {
        records: n,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        ..Spec::default()
    })
}

/// Settings with small segments and an index entry for every batch.
pub(super) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 0,
        ..LogConfig::default()
    }
}

pub(super) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    // The smallest file cache: every test with a few segments also exercises reopening.
    must(PartitionLog::open(
        dir,
        "tid-1",
        config,
        10_000,
        &crate::log::FileCache::new(crate::log::MIN_OPEN_FILES),
    ))
}

pub(super) fn append(log: &mut PartitionLog, records: &[u8]) -> (i64, i64) {
    let info = must(log.append_as_leader(records, LeaderEpoch(0), 10_000));
    (info.first_offset.0, info.last_offset.0)
}

/// The headers of the batches in a blob returned by `read`.
pub(super) fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    if bytes.is_empty() {
        return Vec::new();
    }
    must(batch::validate_stored(bytes))
        .into_iter()
        .map(|b| b.header)
        .collect()
}

/// Base offsets of everything `read` returns from `offset` with room for all of it.
pub(super) fn read_all(log: &PartitionLog, offset: i64) -> Vec<i64> {
    let r = must(log.read(Offset(offset), usize::MAX, log.log_end_offset(), true));
    headers(&r.records).iter().map(|h| h.base_offset).collect()
}

/// Unwraps with the error in the panic message (tests only).
pub(super) fn must<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

pub(super) fn tempdir() -> tempfile::TempDir {
    must(tempfile::tempdir())
}
