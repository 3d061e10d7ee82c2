//! Transaction markers: ending a transaction in every partition it touched.
//!
//! Once a Prepare record is in `__transaction_state`, the outcome is decided; the coordinator
//! then writes a COMMIT or ABORT control batch into each partition of the transaction (Kafka's
//! `TransactionMarkerChannelManager`). A partition this node leads gets its marker appended
//! here ([`append_local`]); the others are sent to their leaders in one WriteTxnMarkers request
//! per node (`peers.rs`), whose handler calls [`append_local`] there. Each marker is
//! appended with acks=all semantics: it counts as written once the partition's ISR has it, so
//! a leader change cannot lose it. A marker in `__consumer_offsets` also tells the group
//! coordinator to apply (commit) or drop (abort) the producer's pending offsets.
//!
//! [`write_all`] retries until every partition has its marker, the partition's topic is
//! deleted (nothing left to end), or the caller says this coordinator no longer owns the
//! transaction (its `__transaction_state` partition moved: the new coordinator reloads the
//! Prepare record and writes the markers itself). A partition refusing the marker with
//! INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED holds a newer producer or
//! coordinator: this writer is the stale one and stops, as Kafka's does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use crate::group::store::OFFSETS_TOPIC;
use crate::group::GroupCoordinator;
use crate::replica::ReplicaManager;
use crate::time::now_ms;
use crate::types::{BrokerId, CoordinatorEpoch, ProducerEpoch, ProducerId, TopicPartition};

use super::txn_log::TxnLog;

/// How long one marker append waits for its partition's ISR (Kafka's `request.timeout.ms`
/// default, which bounds the WriteTxnMarkers append there).
pub const MARKER_APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// First pause before retrying markers that failed; doubles up to [`RETRY_BACKOFF_MAX`].
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest pause between marker retries (a partition without a leader, a node down).
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One transaction's marker: what every partition of it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction's producer.
    pub producer_id: ProducerId,
    /// Its epoch (the bumped one when the coordinator fenced it).
    pub producer_epoch: ProducerEpoch,
    /// The epoch of the coordinator writing it (its `__transaction_state` partition's
    /// leader epoch): partitions refuse markers from an older coordinator.
    pub coordinator_epoch: CoordinatorEpoch,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
}

/// Appends `marker` to this node's replica of `tp`, as leader, and waits until the ISR has
/// it (at most `timeout`). A `__consumer_offsets` partition then completes the producer's
/// pending offsets in the group coordinator. Returns Kafka's error code (0 when written).
pub async fn append_local(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    marker: &TxnMarker,
    tp: &TopicPartition,
    timeout: Duration,
) -> i16 {
    let Some(p) = replicas.get(&tp.topic, tp.partition) else {
        return ResponseError::NotLeaderOrFollower.code();
    };
    if let Err(e) = p.check_enough_replicas() {
        return e.code();
    }
    let (info, epoch) = match p.append_control(
        marker.producer_id,
        marker.producer_epoch,
        marker.coordinator_epoch,
        marker.commit,
        now_ms(),
    ) {
        Ok(x) => x,
        Err(e) => return e.code(),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    if let Err(e) = p
        .wait_replicated(info.last_offset.next(), epoch, deadline)
        .await
    {
        return e.code();
    }
    if tp.topic == OFFSETS_TOPIC {
        groups.complete_txn(tp.partition, marker.producer_id, marker.commit);
    }
    0
}

/// Why [`write_all`] stopped before every marker was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkersStopped {
    /// The caller no longer owns the transaction.
    NotCoordinator,
    /// A partition holds a newer producer epoch or coordinator epoch (the error code).
    Fenced(TopicPartition, i16),
}

/// Writes `marker` to every partition in `partitions`, retrying failures with backoff until
/// all are written or gone, or `owned()` turns false.
pub async fn write_all(
    log: &TxnLog,
    marker: TxnMarker,
    partitions: BTreeSet<TopicPartition>,
    owned: impl Fn() -> bool,
) -> Result<(), MarkersStopped> {
    let mut left = partitions;
    let mut backoff = RETRY_BACKOFF_MIN;
    loop {
        if !owned() {
            return Err(MarkersStopped::NotCoordinator);
        }
        let image = log.image();
        // A deleted topic has nothing left to end.
        left.retain(|tp| image.topics.contains_key(&tp.topic));
        let mut by_leader: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
        for tp in &left {
            if let Some(m) = image.partition(&tp.topic, tp.partition) {
                if m.leader.0 >= 0 {
                    by_leader.entry(m.leader).or_default().push(tp.clone());
                }
            }
        }
        let mut done = Vec::new();
        for (leader, tps) in by_leader {
            let results = if leader == log.node {
                let mut r = Vec::with_capacity(tps.len());
                for tp in tps {
                    let code = append_local(
                        &log.replicas,
                        &log.groups,
                        &marker,
                        &tp,
                        MARKER_APPEND_TIMEOUT,
                    )
                    .await;
                    r.push((tp, code));
                }
                r
            } else {
                let Some(addr) = image
                    .brokers
                    .get(&leader)
                    .map(|b| format!("{}:{}", b.host, b.port))
                else {
                    continue;
                };
                send_remote(log, leader, &addr, &marker, tps).await
            };
            for (tp, code) in results {
                if code == 0 {
                    done.push(tp);
                } else if code == ResponseError::InvalidProducerEpoch.code()
                    || code == ResponseError::TransactionCoordinatorFenced.code()
                {
                    return Err(MarkersStopped::Fenced(tp, code));
                } else {
                    tracing::debug!(partition = %tp, code, producer_id = marker.producer_id.0, "transaction marker not written yet; will retry");
                }
            }
        }
        for tp in done {
            left.remove(&tp);
        }
        if left.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
    }
}

/// One WriteTxnMarkers request to `leader` for `tps`; every partition gets a code (a failed
/// request fails them all with NETWORK_EXCEPTION, to retry).
async fn send_remote(
    log: &TxnLog,
    leader: BrokerId,
    addr: &str,
    marker: &TxnMarker,
    tps: Vec<TopicPartition>,
) -> Vec<(TopicPartition, i16)> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &tps {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(kafka_protocol::messages::ProducerId(marker.producer_id.0))
        .with_producer_epoch(marker.producer_epoch.0)
        .with_transaction_result(marker.commit)
        .with_coordinator_epoch(marker.coordinator_epoch.0)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partition_indexes(ps)
                })
                .collect(),
        )]);
    let failed = |code: i16| tps.iter().map(|tp| (tp.clone(), code)).collect::<Vec<_>>();
    let resp = match log.peers.send(leader, addr, req, None).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(leader = leader.0, error = %e, "WriteTxnMarkers request failed; will retry");
            return failed(ResponseError::NetworkException.code());
        }
    };
    let mut out = Vec::with_capacity(tps.len());
    for m in resp.markers {
        if m.producer_id.0 != marker.producer_id.0 {
            continue;
        }
        for t in m.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                if tps.contains(&tp) {
                    out.push((tp, p.error_code));
                }
            }
        }
    }
    // A partition the answer left out is retried.
    for tp in &tps {
        if !out.iter().any(|(t, _)| t == tp) {
            out.push((tp.clone(), ResponseError::UnknownServerError.code()));
        }
    }
    out
}
