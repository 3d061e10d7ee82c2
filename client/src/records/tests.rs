use std::io::Read;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::*;

fn record(i: i64, key: Option<&str>, value: Vec<u8>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        // Offset minus sequence constant keeps the encoder to one batch; base sequence -1.
        sequence: (i - 1) as i32,
        timestamp: 1_000 + i * 10,
        key: key.map(|k| Bytes::from(k.to_string())),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    }
}

fn batch(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn every_codec_walks_and_decodes() {
    let records: Vec<Record> = (0..50)
        .map(|i| {
            let key = (i % 7 != 3).then(|| format!("k{i}"));
            record(i, key.as_deref(), vec![b'v'; 100 + i as usize])
        })
        .collect();
    for c in CODECS {
        let b = batch(&records, c);
        let mut heads = Vec::new();
        walk(&b, |r| {
            heads.push(r);
            true
        })
        .unwrap();
        assert_eq!(heads.len(), 50, "{c:?}");
        for (i, r) in heads.iter().enumerate() {
            assert_eq!(r.offset_delta, i as i32, "{c:?}");
            assert_eq!(r.timestamp_delta, i as i64 * 10, "{c:?}");
            assert_eq!(r.null_key, i % 7 == 3, "{c:?}");
        }
        let set = decode_batch(&b).unwrap();
        assert_eq!(set.records.len(), 50, "{c:?}");
        assert_eq!(set.records[9].value, records[9].value, "{c:?}");
        // A walk can stop early.
        let mut n = 0;
        walk(&b, |_| {
            n += 1;
            n < 3
        })
        .unwrap();
        assert_eq!(n, 3);
    }
}

/// The records section of one record whose value is `value_len` zero bytes, streamed (never
/// held) into a zstd encoder: a few KB that expand to `value_len`.
fn zstd_bomb(value_len: u64) -> Vec<u8> {
    let mut head = Vec::new();
    let body_len = 1 + 1 + 1 + 1 + varint_len(value_len as i64) + value_len as usize + 1;
    put_varint(&mut head, body_len as i64);
    head.extend_from_slice(&[0, 0, 0]); // attributes, timestamp delta 0, offset delta 0
    put_varint(&mut head, -1); // null key
    put_varint(&mut head, value_len as i64);
    let stream = head
        .as_slice()
        .chain(std::io::repeat(0).take(value_len))
        .chain(&[0u8][..]); // no headers
    let mut out = Vec::new();
    zstd::stream::read::Encoder::new(stream, 1)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    // A batch header around it: base offset 0, one record, zstd.
    let template = batch(&[record(0, None, Vec::new())], Compression::Zstd);
    let mut b = template[..HEADER_SIZE].to_vec();
    b.extend_from_slice(&out);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

fn varint_len(v: i64) -> usize {
    let mut out = Vec::new();
    put_varint(&mut out, v);
    out.len()
}

/// A 600 MB value that zstd shrinks to a few KB: the walk refuses it past its cap and the
/// whole-batch decoders stop at theirs; neither holds more than a buffer or the limit.
#[test]
fn a_zstd_bomb_is_refused_without_expanding_it() {
    let b = zstd_bomb(600 << 20);
    assert!(b.len() < 64 << 10, "{} bytes on the wire", b.len());
    let e = walk(&b, |_| true).unwrap_err();
    assert!(matches!(e, RecordsError::TooLarge { .. }), "{e:?}");
    let e = decompress(4, &b[HEADER_SIZE..], MAX_DECOMPRESSED_BATCH_BYTES).unwrap_err();
    assert!(matches!(e, RecordsError::TooLarge { .. }), "{e:?}");
    assert!(decode_batch(&b).is_err());
    // Below the walk's cap, the same shape walks through with a fixed buffer.
    let small = zstd_bomb(8 << 20);
    let mut seen = Vec::new();
    walk(&small, |r| {
        seen.push(r);
        true
    })
    .unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].null_key);
}

#[test]
fn lying_snappy_lengths_are_refused_before_allocating() {
    // Raw snappy whose length header claims 4 GiB from 6 bytes.
    let raw = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(decompress(2, &raw, MAX_DECOMPRESSED_BATCH_BYTES).is_err());
    // Xerial framing with a block claiming more than its bytes.
    let mut framed = XERIAL_MAGIC.to_vec();
    framed.extend_from_slice(&6u32.to_be_bytes());
    framed.extend_from_slice(&raw);
    assert!(decompress(2, &framed, MAX_DECOMPRESSED_BATCH_BYTES).is_err());
    // A block length past the data.
    let mut cut = XERIAL_MAGIC.to_vec();
    cut.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(decompress(2, &cut, MAX_DECOMPRESSED_BATCH_BYTES).is_err());
}

#[test]
fn garbage_records_are_errors_not_panics() {
    let b = batch(&[record(0, Some("k"), vec![1; 10])], Compression::None);
    for cut in HEADER_SIZE..b.len() {
        let _ = walk(&b[..cut], |_| true);
    }
    let mut lying = b.clone();
    lying[HEADER_SIZE] = 0x7f; // a record length far past the batch
    assert!(walk(&lying, |_| true).is_err());
}
