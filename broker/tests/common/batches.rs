//! Record batches built by hand, as a producer would send them, for tests that need what no
//! client sends on its own (a transactional batch without AddPartitionsToTxn, a transaction
//! no coordinator knows). Shared with the admin crate's tests by path.

use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One uncompressed transactional batch of `n` records from `pid`/`epoch`, sequences from 0,
/// every record stamped `timestamp`, values `{prefix}-{i}`.
pub fn txn_batch(pid: i64, epoch: i16, n: usize, timestamp: i64, prefix: &str) -> bytes::Bytes {
    txn_batch_from(pid, epoch, 0, n, timestamp, prefix)
}

/// [`txn_batch`] with sequences from `first_sequence`.
#[allow(dead_code)] // not every test crate that includes this module uses it
pub fn txn_batch_from(
    pid: i64,
    epoch: i16,
    first_sequence: i32,
    n: usize,
    timestamp: i64,
    prefix: &str,
) -> bytes::Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: first_sequence + i as i32,
            timestamp,
            key: None,
            value: Some(bytes::Bytes::from(format!("{prefix}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}
