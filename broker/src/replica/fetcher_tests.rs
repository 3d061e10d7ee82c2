//! Tests of fetcher.rs.
use super::*;
use crate::log::{LogConfig, PartitionLog};
use crate::metadata::PartitionMeta;
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn batch(n: usize, tag: &str) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_000 + i as i64,
            key: None,
            value: Some(Bytes::from(format!("{tag}-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encode");
    buf.to_vec()
}

fn partition(dir: &std::path::Path) -> Partition {
    let log = PartitionLog::open(
        dir,
        "topic-id",
        LogConfig::default(),
        0,
        &crate::log::FileCache::new(crate::log::MIN_OPEN_FILES),
    )
    .expect("open");
    Partition::new(
        TopicPartition::new("t", 0),
        Uuid::nil(),
        log,
        LeaderEpoch(0),
    )
}

fn meta(leader: i32, epoch: i32) -> PartitionMeta {
    PartitionMeta {
        replicas: vec![BrokerId(1), BrokerId(2)],
        isr: if leader > 0 {
            vec![BrokerId(leader)]
        } else {
            vec![]
        },
        leader: BrokerId(leader),
        leader_epoch: LeaderEpoch(epoch),
        partition_epoch: epoch,
    }
}

/// What the leader's OffsetForLeaderEpoch handler answers.
fn answer(leader: &Partition, wanted: i32) -> (i32, i64) {
    if wanted == leader.leader_epoch().0 {
        return (wanted, leader.log_end_offset().0);
    }
    leader
        .end_offset_for_epoch(LeaderEpoch(wanted))
        .map_or((-1, -1), |(e, o)| (e.0, o.0))
}

/// Runs truncation rounds against `leader` until complete, then copies the leader's log
/// from the follower's end, as the fetcher does.
fn sync(follower: &Partition, leader: &Partition, epoch: LeaderEpoch) -> usize {
    let mut rounds = 0;
    while let Some(latest) = follower.latest_epoch() {
        let latest = latest.0;
        rounds += 1;
        let (e, end) = answer(leader, latest);
        let (offset, complete) = truncation_point(follower, e, end);
        assert!(follower.truncate_as_follower(offset, epoch).unwrap());
        if complete {
            break;
        }
        assert!(rounds < 10, "truncation must converge");
    }
    let from = follower.log_end_offset();
    let r = leader.read(from, 1 << 20, false, true).unwrap();
    if !r.records.is_empty() {
        follower
            .append_as_follower(&r.records, epoch)
            .unwrap()
            .expect("still a follower");
    }
    rounds
}

fn all_bytes(p: &Partition) -> Bytes {
    p.read(p.log_start_offset(), 1 << 20, false, true)
        .unwrap()
        .records
}

#[test]
fn divergent_follower_truncates_to_the_leaders_epoch_end() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = partition(ld.path());
    let follower = partition(fd.path());
    // Epoch 0: broker 1 leads, writes 10 records, broker 2 copies them.
    leader.apply_meta(BrokerId(1), &meta(1, 0), 1);
    follower.apply_meta(BrokerId(2), &meta(1, 0), 1);
    leader.append(&batch(10, "a"), 0).unwrap();
    sync(&follower, &leader, LeaderEpoch(0));
    assert_eq!(follower.log_end_offset(), Offset(10));
    // Epoch 1: broker 2 leads briefly and writes 7 records nobody else gets.
    follower.apply_meta(BrokerId(2), &meta(2, 1), 1);
    follower.append(&batch(7, "lost"), 0).unwrap();
    assert_eq!(follower.log_end_offset(), Offset(17));
    // Epoch 2: broker 1 leads again and writes 5 more.
    leader.apply_meta(BrokerId(1), &meta(1, 2), 1);
    leader.append(&batch(5, "b"), 0).unwrap();
    follower.apply_meta(BrokerId(2), &meta(1, 2), 1);
    assert!(!follower.is_leader());
    // Epoch 1 is unknown to the leader: it ends where epoch 0 ends, at 10.
    assert_eq!(answer(&leader, 1), (0, 10));
    assert_eq!(sync(&follower, &leader, LeaderEpoch(2)), 1);
    assert_eq!(follower.log_end_offset(), Offset(15));
    assert_eq!(all_bytes(&follower), all_bytes(&leader), "identical logs");
    assert_eq!(follower.latest_epoch(), Some(LeaderEpoch(2)));
    // The high watermark follows the leader's, capped by the local end.
    follower.set_follower_high_watermark(99);
    assert_eq!(follower.high_watermark(), Offset(15));
    // A stale epoch's data never lands.
    assert!(follower
        .append_as_follower(&batch(1, "x"), LeaderEpoch(1))
        .unwrap()
        .is_none());
    assert!(!follower
        .truncate_as_follower(Offset(0), LeaderEpoch(1))
        .unwrap());
    assert_eq!(follower.log_end_offset(), Offset(15));
}

#[test]
fn truncation_takes_another_round_for_an_epoch_the_follower_lacks() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let leader = partition(ld.path());
    let follower = partition(fd.path());
    leader.apply_meta(BrokerId(1), &meta(1, 0), 1);
    follower.apply_meta(BrokerId(2), &meta(1, 0), 1);
    leader.append(&batch(5, "a"), 0).unwrap();
    sync(&follower, &leader, LeaderEpoch(0));
    // Leader: epoch 1 from 5 (five records the follower never sees).
    leader.apply_meta(BrokerId(1), &meta(1, 1), 1);
    leader.append(&batch(5, "b"), 0).unwrap();
    // Follower: leads in epoch 2 (it missed epoch 1), writes 4 records at 5.
    follower.apply_meta(BrokerId(2), &meta(2, 2), 1);
    follower.append(&batch(4, "lost"), 0).unwrap();
    // Leader again in epoch 3.
    leader.apply_meta(BrokerId(1), &meta(1, 3), 1);
    leader.append(&batch(2, "c"), 0).unwrap();
    follower.apply_meta(BrokerId(2), &meta(1, 3), 1);
    // Round 1: epoch 2 -> the leader's epoch 1 ends at 10; the follower lacks epoch 1, so
    // it cuts to the end of its epoch 0 (5) and asks again. Round 2: epoch 0 ends at 5.
    assert_eq!(sync(&follower, &leader, LeaderEpoch(3)), 2);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
}

#[test]
fn leader_high_watermark_is_the_isr_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let p = partition(dir.path());
    let mut m = meta(1, 0);
    m.isr = vec![BrokerId(1), BrokerId(2)];
    p.apply_meta(BrokerId(1), &m, 2);
    p.append(&batch(10, "a"), 0).unwrap();
    assert_eq!(p.high_watermark(), Offset(0), "follower position unknown");
    let now = Instant::now();
    let u = p.record_follower_fetch(BrokerId(2), 4, now);
    assert!(u.high_watermark_moved);
    assert!(u.expand.is_none(), "already in the ISR");
    assert_eq!(p.high_watermark(), Offset(4));
    p.record_follower_fetch(BrokerId(2), 10, now);
    assert_eq!(p.high_watermark(), Offset(10));
    assert!(p.check_enough_replicas().is_ok());
    // A lagging follower is shrunk out after the lag time.
    p.append(&batch(1, "b"), 0).unwrap();
    let later = now + Duration::from_secs(31);
    let change = p
        .shrink_candidate(later, Duration::from_secs(30))
        .expect("shrink");
    assert_eq!(change.isr, vec![BrokerId(1)]);
    assert!(
        p.shrink_candidate(later, Duration::from_secs(30)).is_none(),
        "one at a time"
    );
    p.isr_change_done(true);
    // Once committed, the ISR of one lets the high watermark reach the log end.
    m.isr = vec![BrokerId(1)];
    m.partition_epoch = 1;
    p.apply_meta(BrokerId(1), &m, 2);
    assert_eq!(p.high_watermark(), Offset(11));
    assert!(
        p.check_enough_replicas().is_err(),
        "below min.insync.replicas"
    );
    // The follower catches up and may rejoin.
    let u = p.record_follower_fetch(BrokerId(2), 11, later);
    assert_eq!(
        u.expand.map(|c| c.isr),
        Some(vec![BrokerId(1), BrokerId(2)])
    );
}

#[tokio::test]
async fn acks_all_waits_for_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(partition(dir.path()));
    let mut m = meta(1, 0);
    m.isr = vec![BrokerId(1), BrokerId(2)];
    p.apply_meta(BrokerId(1), &m, 2);
    let (info, epoch) = p.append_as_leader(&batch(3, "a"), 0).unwrap();
    let end = info.last_offset.next();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
    let err = p.wait_replicated(end, epoch, deadline).await.unwrap_err();
    assert_eq!(err.response_error(), ResponseError::RequestTimedOut);
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            p.wait_replicated(end, epoch, deadline).await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.record_follower_fetch(BrokerId(2), 3, Instant::now());
    assert!(waiter.await.unwrap().is_ok());
    // Leadership moves: a waiter gets NOT_LEADER_OR_FOLLOWER at once.
    let (info, epoch) = p.append_as_leader(&batch(1, "b"), 0).unwrap();
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            p.wait_replicated(info.last_offset.next(), epoch, deadline)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    p.apply_meta(BrokerId(1), &meta(2, 1), 2);
    assert_eq!(
        waiter.await.unwrap().unwrap_err().response_error(),
        ResponseError::NotLeaderOrFollower
    );
}
