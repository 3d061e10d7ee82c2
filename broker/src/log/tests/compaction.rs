//! Log compaction: latest value per key, tombstones, min.compaction.lag.ms, codecs, the dirty
//! ratio gate, producer state, crash safety of the segment swap.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{headers, must, open, tempdir};
use crate::log::{CleanStats, LogConfig, LogError, PartitionLog, CLEANER_CHECKPOINT};
use crate::types::{LeaderEpoch, Offset, ProducerId};

/// A record as a test sees it: offset, key, value.
type Rec = (i64, Option<String>, Option<String>);

pub(super) fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 0,
        cleanup_compact: true,
        cleanup_delete: false,
        ..LogConfig::default()
    }
}

/// One batch of keyed records (`None` key or value for null), timestamps `ts + i`, each record
/// with a header `h` repeating its key, optionally of an idempotent producer.
fn batch_of(
    recs: &[(Option<&str>, Option<&str>)],
    ts: i64,
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    keyed_batch(recs, ts, compression, producer, false)
}

/// `batch_of`, transactional when `transactional` (then `producer` must be set).
pub(super) fn keyed_batch(
    recs: &[(Option<&str>, Option<&str>)],
    ts: i64,
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
    transactional: bool,
) -> Vec<u8> {
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = recs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let mut hdrs = IndexMap::new();
            hdrs.insert(
                StrBytes::from_static_str("h"),
                k.map(|k| Bytes::from(k.to_string())),
            );
            Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if pid >= 0 {
                    seq + i as i32
                } else {
                    -1 + i as i32
                },
                timestamp: ts + i as i64,
                key: k.map(|k| Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: hdrs,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    must(RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &options,
    ));
    buf.to_vec()
}

fn put(log: &mut PartitionLog, recs: &[(Option<&str>, Option<&str>)], ts: i64) -> (i64, i64) {
    let info = must(log.append_as_leader(
        &batch_of(recs, ts, Compression::None, None),
        LeaderEpoch(0),
        10_000,
    ));
    (info.first_offset.0, info.last_offset.0)
}

/// Every record readable from the log start, decoded, checking that each record's header still
/// names its key.
fn records(log: &PartitionLog) -> Vec<Rec> {
    let r = must(log.read(
        log.log_start_offset(),
        usize::MAX,
        log.log_end_offset(),
        true,
    ));
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let mut bytes: &[u8] = &r.records;
    must(RecordBatchDecoder::decode_all(&mut bytes))
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| {
            let h = r.headers.get(&StrBytes::from_static_str("h")).cloned();
            assert_eq!(h, Some(r.key.clone()), "record header kept");
            (r.offset, text(&r.key), text(&r.value))
        })
        .collect()
}

/// What compaction must leave: below `clean_end` the latest record of each key (tombstones
/// included), from there on everything.
fn expected(all: &[Rec], clean_end: i64) -> Vec<Rec> {
    let mut latest: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for (o, k, _) in all.iter().filter(|r| r.0 < clean_end) {
        if k.is_some() {
            latest.insert(k.clone(), *o);
        }
    }
    all.iter()
        .filter(|(o, k, _)| *o >= clean_end || k.is_none() || latest.get(k) == Some(o))
        .cloned()
        .collect()
}

/// Writes `batches` batches of three records over keys k0..k9 (so batches lose some records
/// and keep others), values naming the write. Returns every record written.
fn fill(
    log: &mut PartitionLog,
    batches: usize,
    start: usize,
    compression: Compression,
) -> Vec<Rec> {
    let mut all = Vec::new();
    for b in start..start + batches {
        let recs: Vec<(String, String)> = (0..3)
            .map(|i| {
                let n = b * 3 + i;
                (format!("k{}", (n * 7) % 10), format!("value-{n}"))
            })
            .collect();
        let refs: Vec<(Option<&str>, Option<&str>)> = recs
            .iter()
            .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
            .collect();
        let info = must(log.append_as_leader(
            &batch_of(&refs, 1_000 + b as i64, compression, None),
            LeaderEpoch(0),
            10_000,
        ));
        for (i, (k, v)) in recs.into_iter().enumerate() {
            all.push((info.first_offset.0 + i as i64, Some(k), Some(v)));
        }
    }
    all
}

fn active_base(log: &PartitionLog) -> i64 {
    log.segments_info().last().map_or(0, |s| s.base_offset.0)
}

fn checkpoint(dir: &std::path::Path) -> Option<i64> {
    std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT))
        .ok()?
        .lines()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn keeps_the_latest_value_per_key_with_offsets_unchanged() {
    let dir = tempdir();
    let mut log = open(dir.path(), compact_config());
    let all = fill(&mut log, 100, 0, Compression::None);
    assert_eq!(records(&log), all);
    let (segments, size, end) = (log.segment_count(), log.size_bytes(), log.log_end_offset());
    assert!(segments > 10);
    let clean_end = active_base(&log);

    let stats = must(log.compact(20_000));
    let want = expected(&all, clean_end);
    assert_eq!(records(&log), want);
    let below: Vec<_> = want.iter().filter(|r| r.0 < clean_end).collect();
    assert_eq!(
        below.len(),
        10,
        "one record per key in the cleaned segments"
    );
    assert_eq!(
        stats.records_removed,
        (all.len() - want.len()) as u64,
        "{stats:?}"
    );
    assert!(stats.segments_cleaned > 0 && stats.bytes_after < stats.bytes_before);
    assert_eq!(
        log.size_bytes(),
        size - (stats.bytes_before - stats.bytes_after)
    );
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.log_start_offset(), Offset(0));
    assert_eq!(
        log.segments_info()[0].base_offset,
        Offset(0),
        "first segment stays"
    );
    assert!(
        log.segment_count() < segments,
        "emptied segments are deleted"
    );
    assert_eq!(checkpoint(dir.path()), Some(clean_end));

    // Nothing dirty: the next pass does nothing.
    assert_eq!(must(log.compact(20_000)), CleanStats::default());

    // Offsets survive inside rewritten batches: every batch's records are exactly the kept ones.
    let r = must(log.read(Offset(0), usize::MAX, end, true));
    for h in headers(&r.records) {
        assert_eq!(h.base_sequence, -1, "no producer, no sequence");
        assert_eq!(h.producer_id, -1);
    }

    // More writes: the cleaned part and the new part compact together.
    let more = fill(&mut log, 60, 100, Compression::None);
    let all: Vec<Rec> = all.into_iter().chain(more).collect();
    let clean_end = active_base(&log);
    must(log.compact(30_000));
    assert_eq!(records(&log), expected(&all, clean_end));
    assert_eq!(log.log_end_offset().0, all.len() as i64);
    // Reading from inside a gap starts at the next record.
    let from = want[1].0 + 1;
    let r = must(log.read(Offset(from), usize::MAX, log.log_end_offset(), true));
    assert!(headers(&r.records)
        .first()
        .is_some_and(|h| h.last_offset() >= from));
    // Appends continue at the same end offset.
    assert_eq!(
        put(&mut log, &[(Some("k1"), Some("after"))], 5_000).0,
        all.len() as i64
    );
}

#[test]
fn compressed_batches_compact_in_their_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
    ] {
        let dir = tempdir();
        let mut log = open(dir.path(), compact_config());
        let all = fill(&mut log, 80, 0, codec);
        let clean_end = active_base(&log);
        let stats = must(log.compact(20_000));
        assert!(stats.records_removed > 0, "{codec:?}");
        assert_eq!(records(&log), expected(&all, clean_end), "{codec:?}");
        let r = must(log.read(Offset(0), usize::MAX, log.log_end_offset(), true));
        for h in headers(&r.records) {
            assert_eq!(h.compression(), codec as i16, "{codec:?} kept");
        }
        must(log.close());
        let log = open(dir.path(), compact_config());
        assert_eq!(
            records(&log),
            expected(&all, clean_end),
            "{codec:?} reopened"
        );
    }
}

#[test]
fn tombstones_go_only_after_delete_retention() {
    let dir = tempdir();
    let config = LogConfig {
        delete_retention_ms: 1_000,
        min_cleanable_dirty_ratio: 0.0,
        ..compact_config()
    };
    let mut log = open(dir.path(), config);
    let keys = ["k0", "k1", "k2", "k3", "k4"];
    let values: Vec<_> = keys.iter().map(|k| (Some(*k), Some("v"))).collect();
    put(&mut log, &values, 1_000);
    put(&mut log, &[(Some("k0"), None), (Some("k1"), None)], 2_000);
    put(&mut log, &[(Some("k2"), Some("v2"))], 2_000);
    log.roll().unwrap_or_else(|e| panic!("{e}"));

    // At 2500 the tombstones (batch time 2000) are younger than delete.retention.ms.
    must(log.compact(2_500));
    let now: Vec<_> = records(&log)
        .into_iter()
        .map(|(o, k, v)| (o, k.unwrap_or_default(), v))
        .collect();
    assert_eq!(
        now,
        vec![
            (3, "k3".into(), Some("v".into())),
            (4, "k4".into(), Some("v".into())),
            (5, "k0".into(), None),
            (6, "k1".into(), None),
            (7, "k2".into(), Some("v2".into())),
        ]
    );

    // Later, with new dirty data, they are removed.
    put(&mut log, &[(Some("k9"), Some("v9"))], 4_000);
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    must(log.compact(2_900));
    assert_eq!(
        records(&log).len(),
        6,
        "still within delete.retention.ms at 2900"
    );
    put(&mut log, &[(Some("k8"), Some("v8"))], 4_000);
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    let stats = must(log.compact(5_000));
    assert_eq!(stats.records_removed, 2);
    let keys: Vec<_> = records(&log).into_iter().filter_map(|r| r.1).collect();
    assert_eq!(keys, vec!["k3", "k4", "k2", "k9", "k8"]);
}

#[test]
fn min_compaction_lag_protects_recent_segments() {
    let dir = tempdir();
    let config = LogConfig {
        min_compaction_lag_ms: 500,
        ..compact_config()
    };
    let mut log = open(dir.path(), config);
    for i in 0..20 {
        put(
            &mut log,
            &[(Some("k0"), Some("v")), (Some("k1"), Some("v"))],
            1_000 + 100 * i,
        );
        log.roll().unwrap_or_else(|e| panic!("{e}"));
    }
    // At 2500 segments with a record newer than 2000 (batches 10.. at 2000, 2001) stay dirty.
    let stats = must(log.compact(2_500));
    assert_eq!(stats.records_removed, 18);
    let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
    assert_eq!(offsets, (18..40).collect::<Vec<_>>());
    assert_eq!(checkpoint(dir.path()), Some(20));
    // Segment 0 (emptied, kept for the log start), 9, 10..19 and the active one.
    assert_eq!(log.segment_count(), 13);
    assert_eq!(log.segments_info()[0].size_bytes, 0);
    assert_eq!(log.log_start_offset(), Offset(0));
    // Everything is old enough later.
    must(log.compact(100_000));
    let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![38, 39]);
}

#[test]
fn dirty_ratio_gates_the_pass() {
    let dir = tempdir();
    let mut log = open(dir.path(), compact_config());
    for i in 0..60 {
        let (k, v) = (format!("key-{i}"), format!("value-{i}"));
        put(&mut log, &[(Some(&k), Some(&v))], 1_000 + i);
    }
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    // A fresh log is all dirty; nothing to remove, but the checkpoint moves.
    assert_eq!(must(log.compact(10_000)), CleanStats::default());
    assert_eq!(checkpoint(dir.path()), Some(60));
    put(&mut log, &[(Some("key-0"), Some("again"))], 2_000);
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    // One small dirty segment against 60 clean records: below 0.5.
    assert_eq!(must(log.compact(10_000)), CleanStats::default());
    assert_eq!(records(&log).first().map(|r| r.0), Some(0));
    assert_eq!(checkpoint(dir.path()), Some(60));
    log.set_config(LogConfig {
        min_cleanable_dirty_ratio: 0.01,
        ..compact_config()
    });
    let stats = must(log.compact(10_000));
    assert_eq!(stats.records_removed, 1);
    assert_eq!(records(&log).first().map(|r| r.0), Some(1));
    assert_eq!(checkpoint(dir.path()), Some(61));
}

#[test]
fn reopen_after_compaction_clean_and_unclean() {
    let dir = tempdir();
    let mut log = open(dir.path(), compact_config());
    let all = fill(&mut log, 100, 0, Compression::Lz4);
    let clean_end = active_base(&log);
    must(log.compact(20_000));
    let want = expected(&all, clean_end);
    let (info, end) = (log.segments_info(), log.log_end_offset());
    must(log.close());

    let mut log = open(dir.path(), compact_config());
    assert_eq!(records(&log), want);
    assert_eq!(
        (log.segments_info(), log.log_end_offset()),
        (info.clone(), end)
    );
    let more = fill(&mut log, 1, 100, Compression::Lz4);
    drop(log); // no clean shutdown

    let log = open(dir.path(), compact_config());
    let want: Vec<Rec> = want.into_iter().chain(more).collect();
    assert_eq!(records(&log), want);
    assert_eq!(
        log.segments_info()[..info.len() - 1],
        info[..info.len() - 1]
    );
    drop(log);

    // Lost indexes (a crash between the swap and the index rebuild) are rebuilt.
    for entry in must(std::fs::read_dir(dir.path())) {
        let path = must(entry).path();
        if path
            .extension()
            .is_some_and(|e| e == "index" || e == "timeindex")
        {
            must(std::fs::remove_file(path));
        }
    }
    let log = open(dir.path(), compact_config());
    assert_eq!(records(&log), want);
    assert_eq!(
        must(log.offset_for_timestamp(0)).map(|(o, _)| o),
        want.first().map(|r| Offset(r.0))
    );
}

#[test]
fn leftover_cleaned_file_is_removed_at_open() {
    let dir = tempdir();
    let mut log = open(dir.path(), compact_config());
    let all = fill(&mut log, 40, 0, Compression::None);
    must(log.close());
    // A crash while writing the replacement of segment 0: a partial `.cleaned` file.
    let first = dir.path().join("00000000000000000000.log");
    let cleaned = dir.path().join("00000000000000000000.log.cleaned");
    let bytes = must(std::fs::read(&first));
    must(std::fs::write(&cleaned, &bytes[..bytes.len() / 3]));

    let mut log = open(dir.path(), compact_config());
    assert!(!cleaned.exists());
    assert_eq!(records(&log), all, "the old segment is intact");
    let clean_end = active_base(&log);
    must(log.compact(20_000));
    assert!(!cleaned.exists(), "the swap leaves no .cleaned file");
    assert_eq!(records(&log), expected(&all, clean_end));
}

#[test]
fn idempotent_producer_state_survives_compaction() {
    let dir = tempdir();
    let mut log = open(dir.path(), compact_config());
    let pid = 7;
    for i in 0..12 {
        let b = batch_of(
            &[(Some("k0"), Some("v")), (Some("k1"), Some("v"))],
            1_000 + i,
            Compression::None,
            Some((pid, 0, 2 * i as i32)),
        );
        must(log.append_as_leader(&b, LeaderEpoch(0), 10_000));
        log.roll().unwrap_or_else(|e| panic!("{e}"));
    }
    let before = log.producer_state(ProducerId(pid));
    let stats = must(log.compact(20_000));
    assert_eq!(stats.records_removed, 14, "the first 7 batches go");
    // The producer's last five batches stay whole (they make up its state).
    let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
    assert_eq!(offsets, (14..24).collect::<Vec<_>>());
    assert_eq!(log.producer_state(ProducerId(pid)), before);
    must(log.close());

    let mut log = open(dir.path(), compact_config());
    assert_eq!(log.producer_state(ProducerId(pid)), before);
    // A retry of the last batch is still a duplicate; the next sequence is still expected.
    let retry = batch_of(
        &[(Some("k0"), Some("v")), (Some("k1"), Some("v"))],
        1_011,
        Compression::None,
        Some((pid, 0, 22)),
    );
    let info = must(log.append_as_leader(&retry, LeaderEpoch(0), 10_000));
    assert!(info.duplicate);
    let next = batch_of(
        &[(Some("k0"), Some("w"))],
        2_000,
        Compression::None,
        Some((pid, 0, 24)),
    );
    assert_eq!(
        must(log.append_as_leader(&next, LeaderEpoch(0), 10_000)).first_offset,
        Offset(24)
    );
}

#[test]
fn log_append_time_batches_keep_their_time() {
    let dir = tempdir();
    let mut log = open(
        dir.path(),
        LogConfig {
            timestamp_type_log_append: true,
            ..compact_config()
        },
    );
    let b = batch_of(
        &[
            (Some("a"), Some("1")),
            (Some("b"), Some("1")),
            (Some("a"), Some("2")),
        ],
        1_000,
        Compression::Gzip,
        None,
    );
    must(log.append_as_leader(&b, LeaderEpoch(3), 7_777));
    let b = batch_of(&[(Some("a"), Some("3"))], 1_000, Compression::None, None);
    must(log.append_as_leader(&b, LeaderEpoch(4), 8_888));
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    must(log.compact(20_000));
    let r = must(log.read(Offset(0), usize::MAX, log.log_end_offset(), true));
    let hs = headers(&r.records);
    assert_eq!(hs.len(), 2);
    let h = hs[0];
    assert_eq!((h.base_offset, h.last_offset(), h.record_count), (1, 1, 1));
    assert!(h.is_log_append_time());
    assert_eq!((h.max_timestamp, h.partition_leader_epoch), (7_777, 3));
    assert_eq!(h.compression(), 1);
    assert_eq!(hs[1].base_offset, 3);
    let kv: Vec<_> = records(&log).into_iter().map(|r| (r.0, r.1, r.2)).collect();
    assert_eq!(
        kv,
        vec![
            (1, Some("b".into()), Some("1".into())),
            (3, Some("a".into()), Some("3".into()))
        ]
    );
}

#[test]
fn null_keys_are_refused_on_compacted_topics() {
    let dir = tempdir();
    let mut log = open(dir.path(), compact_config());
    for codec in [Compression::None, Compression::Zstd] {
        let b = batch_of(
            &[
                (Some("a"), Some("1")),
                (None, Some("2")),
                (Some("b"), Some("3")),
                (None, Some("4")),
            ],
            1_000,
            codec,
            None,
        );
        // KIP-467: each keyless record named by its index, INVALID_RECORD for the batch.
        let end = log.log_end_offset();
        match log.append_as_leader(&b, LeaderEpoch(0), 10_000) {
            Err(LogError::RecordsRejected(r)) => {
                let indices: Vec<i32> = r.errors.iter().map(|e| e.batch_index).collect();
                assert_eq!(indices, [1, 3], "{codec:?}");
                assert!(r.errors.iter().all(|e| e
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("without key"))));
                assert_eq!(
                    crate::error::KafkaError::from(LogError::RecordsRejected(r)).code(),
                    87
                );
            }
            other => panic!("{codec:?}: {other:?}"),
        }
        assert_eq!(log.log_end_offset(), end, "nothing of the batch appended");
        let ok = batch_of(&[(Some("a"), None)], 1_000, codec, None);
        must(log.append_as_leader(&ok, LeaderEpoch(0), 10_000));
    }
    // Past the first MAX_RECORD_ERROR_MESSAGES errors only indices are kept: the answer is
    // never larger than the request.
    let many: Vec<(Option<&str>, Option<&str>)> = (0..50).map(|_| (None, Some("v"))).collect();
    let b = batch_of(&many, 1_000, Compression::None, None);
    match log.append_as_leader(&b, LeaderEpoch(0), 10_000) {
        Err(LogError::RecordsRejected(r)) => {
            assert_eq!(r.errors.len(), 50);
            let with_message = r.errors.iter().filter(|e| e.message.is_some()).count();
            assert_eq!(with_message, crate::log::MAX_RECORD_ERROR_MESSAGES);
            assert!(r.to_string().starts_with(
                "One or more records have been rejected due to 50 record errors in total"
            ));
        }
        other => panic!("{other:?}"),
    }
    // A delete-only topic takes them.
    let dir = tempdir();
    let mut log = open(dir.path(), super::small_config());
    let b = batch_of(&[(None, Some("2"))], 1_000, Compression::None, None);
    must(log.append_as_leader(&b, LeaderEpoch(0), 10_000));
    assert_eq!(
        must(log.compact(20_000)),
        CleanStats::default(),
        "not compacted"
    );
}

#[test]
fn cleanup_policy_decides_retention() {
    let dir = tempdir();
    let retention = LogConfig {
        retention_ms: 1,
        ..compact_config()
    };
    let mut log = open(dir.path(), retention.clone());
    fill(&mut log, 30, 0, Compression::None);
    let segments = log.segment_count();
    assert_eq!(must(log.enforce_retention(1_000_000)), 0, "compact only");
    assert_eq!(log.segment_count(), segments);
    log.set_config(LogConfig {
        cleanup_delete: true,
        ..retention
    });
    assert_eq!(
        must(log.enforce_retention(1_000_000)),
        segments - 1,
        "compact,delete"
    );
}

#[test]
fn records_without_key_are_kept() {
    let dir = tempdir();
    let mut log = open(dir.path(), super::small_config());
    put(
        &mut log,
        &[(None, Some("1")), (Some("a"), Some("1"))],
        1_000,
    );
    put(
        &mut log,
        &[(None, Some("2")), (Some("a"), Some("2"))],
        1_000,
    );
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    // The topic becomes compacted after null-key records were written.
    log.set_config(compact_config());
    must(log.compact(20_000));
    let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![0, 2, 3]);
}

#[test]
fn gaps_inside_a_rewritten_batch_keep_absolute_offsets() {
    for codec in [Compression::None, Compression::Gzip] {
        let dir = tempdir();
        let mut log = open(dir.path(), compact_config());
        let keys = ["a", "b", "c", "d", "e"];
        let first: Vec<_> = keys.iter().map(|k| (Some(*k), Some("old"))).collect();
        let b = batch_of(&first, 1_000, codec, None);
        must(log.append_as_leader(&b, LeaderEpoch(0), 10_000));
        put(
            &mut log,
            &[(Some("b"), Some("new")), (Some("d"), Some("new"))],
            1_100,
        );
        log.roll().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(must(log.compact(20_000)).records_removed, 2);
        let r = must(log.read(Offset(0), usize::MAX, log.log_end_offset(), true));
        let h = headers(&r.records)[0];
        assert_eq!(
            (
                h.base_offset,
                h.last_offset(),
                h.record_count,
                h.compression()
            ),
            (0, 4, 3, codec as i16)
        );
        assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_004));
        let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![0, 2, 4, 5, 6], "{codec:?}");
    }
}
