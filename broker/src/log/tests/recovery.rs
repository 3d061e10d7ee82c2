//! Reopening: clean shutdown, crash recovery, rebuilt indexes and checkpoints.

use std::fs::OpenOptions;
use std::io::Write;

use super::{append, idempotent, must, open, plain, read_all, small_config, tempdir};
use crate::log::{LogConfig, PartitionLog, CLEAN_SHUTDOWN_FILE};
use crate::types::{LeaderEpoch, Offset, ProducerId};

fn fill(log: &mut PartitionLog, batches: i64) {
    for i in 0..batches {
        append(log, &plain(2, 1_000 + i));
    }
}

fn last_log_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = must(std::fs::read_dir(dir))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap_or_default()
}

fn append_raw(path: &std::path::Path, bytes: &[u8]) {
    let mut f = must(OpenOptions::new().append(true).open(path));
    must(f.write_all(bytes));
}

#[test]
fn clean_reopen_keeps_everything_and_skips_recovery() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 20);
    let (segments, size) = (log.segment_count(), log.size_bytes());
    must(log.close());
    assert!(dir.path().join(CLEAN_SHUTDOWN_FILE).exists());

    // Damage a record byte of the last batch (not its header): only a CRC check can see it.
    let path = last_log_file(dir.path());
    let mut bytes = must(std::fs::read(&path));
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    must(std::fs::write(&path, &bytes));

    let log = open(dir.path(), small_config());
    assert!(
        !dir.path().join(CLEAN_SHUTDOWN_FILE).exists(),
        "open removes the marker"
    );
    assert_eq!(
        (log.log_end_offset(), log.segment_count(), log.size_bytes()),
        (Offset(40), segments, size)
    );
    // Served as stored: the damage is for the consumer's CRC check to find.
    let r = must(log.read(Offset(0), usize::MAX, Offset(40), true));
    assert_eq!(r.records.len() as u64, size);
    drop(log);

    // Without the marker the same damage is found and cut.
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), Offset(38));
    assert_eq!(read_all(&log, 0).len(), 19);
}

#[test]
fn unclean_reopen_cuts_a_garbage_or_half_written_tail() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    fill(&mut log, 12);
    let size = log.size_bytes();
    drop(log);
    append_raw(
        &last_log_file(dir.path()),
        &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3],
    );
    let mut log = open(dir.path(), small_config());
    assert_eq!((log.log_end_offset(), log.size_bytes()), (Offset(24), size));
    // Appends continue at the right offset.
    assert_eq!(append(&mut log, &plain(1, 5)), (24, 24));
    let size = log.size_bytes();
    drop(log);

    // Half a batch, as a crash in the middle of a write leaves it.
    let half = plain(3, 9);
    append_raw(&last_log_file(dir.path()), &half[..half.len() / 2]);
    let log = open(dir.path(), small_config());
    assert_eq!((log.log_end_offset(), log.size_bytes()), (Offset(25), size));
    assert_eq!(read_all(&log, 20), vec![20, 22, 24]);
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt() {
    let dir = tempdir();
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone());
    fill(&mut log, 50);
    must(log.close());
    let index = dir.path().join("00000000000000000000.index");
    let before = must(std::fs::read(&index));
    assert!(before.len() >= 8 * 10);
    must(std::fs::remove_file(&index));
    // A damaged time index too: a size that is not a multiple of 12.
    let time_index = dir.path().join("00000000000000000000.timeindex");
    append_raw(&time_index, &[1, 2, 3]);

    let log = open(dir.path(), config.clone());
    assert_eq!(
        must(std::fs::read(&index)),
        before,
        "rebuilt index equals the original"
    );
    assert_eq!(must(std::fs::metadata(&time_index)).len() % 12, 0);
    for o in [0, 1, 17, 54, 99] {
        assert_eq!(read_all(&log, o).first(), Some(&(o - o % 2)));
    }
    assert_eq!(
        must(log.offset_for_timestamp(1_030)),
        Some((Offset(59), 1_030))
    );
    must(log.close());

    // Entries that point into the middle of batches are caught too.
    let mut bad = before.clone();
    bad[4..8].copy_from_slice(&3u32.to_be_bytes());
    must(std::fs::write(&index, &bad));
    let log = open(dir.path(), config);
    assert_eq!(must(std::fs::read(&index)), before);
    assert_eq!(read_all(&log, 3).first(), Some(&2));
}

#[test]
fn epoch_checkpoint_survives_reopen() {
    let dir = tempdir();
    let mut log = open(dir.path(), LogConfig::default());
    must(log.append_as_leader(&plain(2, 1), LeaderEpoch(1), 0));
    must(log.append_as_leader(&plain(3, 1), LeaderEpoch(1), 0));
    must(log.append_as_leader(&plain(2, 1), LeaderEpoch(3), 0));
    must(log.append_as_leader(&plain(1, 1), LeaderEpoch(6), 0));
    let text = must(std::fs::read_to_string(
        dir.path().join("leader-epoch-checkpoint"),
    ));
    assert_eq!(text, "0\n3\n1 0\n3 5\n6 7\n");
    must(log.close());
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(6)));
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        Some((LeaderEpoch(1), Offset(5)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(2)),
        Some((LeaderEpoch(1), Offset(5)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(3)),
        Some((LeaderEpoch(3), Offset(7)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(6)),
        Some((LeaderEpoch(6), Offset(8)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(9)),
        Some((LeaderEpoch(6), Offset(8)))
    );
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), None);
    drop(log);

    // A lost checkpoint is re-derived from the batches.
    must(std::fs::remove_file(
        dir.path().join("leader-epoch-checkpoint"),
    ));
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(3)),
        Some((LeaderEpoch(3), Offset(7)))
    );
    drop(log);

    // Entries past the log end are dropped.
    must(std::fs::write(
        dir.path().join("leader-epoch-checkpoint"),
        "0\n2\n1 0\n9 50\n",
    ));
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(9)),
        Some((LeaderEpoch(6), Offset(8)))
    );
}

#[test]
fn producer_state_survives_reopen() {
    let dir = tempdir();
    let mut log = open(dir.path(), small_config());
    append(&mut log, &idempotent(11, 2, 0, 3));
    fill(&mut log, 10);
    append(&mut log, &idempotent(11, 2, 3, 2));
    must(log.close());
    let mut log = open(dir.path(), small_config());
    let state = log
        .producer_state(ProducerId(11))
        .map(|p| (p.producer_epoch.0, p.last_sequence, p.last_offset.0));
    assert_eq!(state, Some((2, 4, 24)));
    // The retry of the last batch is still recognised, a gap still rejected.
    let info = must(log.append_as_leader(&idempotent(11, 2, 3, 2), LeaderEpoch(0), 0));
    assert!(info.duplicate);
    assert_eq!(
        (info.first_offset, info.last_offset),
        (Offset(23), Offset(24))
    );
    assert_eq!(
        log.append_as_leader(&idempotent(11, 2, 9, 1), LeaderEpoch(0), 0)
            .map_err(|e| crate::error::KafkaError::from(e).code())
            .err(),
        Some(45)
    );
}

#[test]
fn topic_id_is_recorded_and_checked() {
    let dir = tempdir();
    drop(open(dir.path(), LogConfig::default()));
    let meta = must(std::fs::read_to_string(
        dir.path().join("partition.metadata"),
    ));
    assert_eq!(meta, "version: 0\ntopic_id: tid-1\n");
    assert!(PartitionLog::open(
        dir.path(),
        "another",
        LogConfig::default(),
        0,
        &crate::log::FileCache::new(crate::log::MIN_OPEN_FILES)
    )
    .is_err());
}
