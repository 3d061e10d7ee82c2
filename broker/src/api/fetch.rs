//! Fetch: serve stored batches as they are, long-polling until `min_bytes` are available or
//! `max_wait_ms` passes. A waiting fetch is woken only by the partitions it reads (data
//! appended, high watermark or leadership moved), never by appends elsewhere; a pass whose
//! response is thrown away counts nothing: metrics and the replication throttle see only the
//! response that is sent.
//!
//! A fetch with a replica id (>= 0) comes from a follower: it reads up to the log end rather
//! than the high watermark, its fetch offset is recorded as the follower's log end offset
//! (which moves the high watermark and may add the follower to the ISR), and a
//! `last_fetched_epoch` the leader's epoch cache disagrees with gets a `diverging_epoch`
//! (KIP-320) so the follower truncates.
//!
//! Consumers read up to the high watermark (isolation_level 0, read_uncommitted) or up to the
//! last stable offset (1, read_committed), the latter with the aborted transactions of the
//! returned batches so the consumer can skip them (null for read_uncommitted, as in Kafka).
//! Every partition answered carries the last stable offset; a read_committed fetch waiting at
//! it is woken when the high watermark passes the marker that ends the transaction (see
//! `replica/partition/read.rs`). An isolation_level Kafka does not define is INVALID_REQUEST.
//!
//! Follower fetching (KIP-392, `replica/selector.rs`): a consumer fetch of v11+ may be served
//! by a follower replica, up to that replica's high watermark; with
//! `replica.selector.class` rack-aware, the leader answers a consumer naming its rack with the
//! preferred read replica of that rack (no data, answered at once) when there is one. Consumer
//! bytes are counted by who served them and whether the client shared the server's rack
//! (`rill_consumer_fetch_bytes_total`), which shows the traffic kept inside racks.
//!
//! Fetch sessions (KIP-227) are declined the way Kafka declines them when its cache is full:
//! every response carries session id 0, so clients keep sending full fetch requests; an
//! incremental request for a session we never created gets FETCH_SESSION_ID_NOT_FOUND.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use tokio::sync::Notify;

use crate::context::Broker;
use crate::error::KafkaError;
use crate::log::LogError;
use crate::metadata::acl::AclOperation;
use crate::replica::partition::{FetchIsolation, FetchRead};
use crate::replica::selector::{self, Candidate, ReplicaSelector};
use crate::replica::Partition;
use crate::types::{LeaderEpoch, Offset};

/// Fetch failures, logged once per interval per error code.
static FETCH_ERRORS: std::sync::LazyLock<crate::repeated::Repeated> =
    std::sync::LazyLock::new(crate::repeated::Repeated::default);

/// Handles Fetch.
pub async fn handle(
    b: &Broker,
    req: FetchRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> FetchResponse {
    if req.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    if replica_id >= 0 {
        record_replica_fetch(b, &req, version, crate::types::BrokerId(replica_id));
    }
    // Followers need CLUSTER_ACTION on the cluster, consumers READ on each topic (Kafka's
    // rules); a refused partition answers TOPIC_AUTHORIZATION_FAILED.
    let follower_allowed = replica_id < 0 || ctx.authz.cluster(AclOperation::ClusterAction);
    let may_read = |topic: &str| {
        if replica_id >= 0 {
            follower_allowed
        } else {
            ctx.authz.topic(AclOperation::Read, topic)
        }
    };
    let may_read: &(dyn Fn(&str) -> bool + Sync) = &may_read;
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let waiter = Arc::new(Notify::new());
    loop {
        // Registered before reading, so a change between the read and the wait still wakes.
        let pass = read_all(b, &req, version, replica_id, Some(&waiter), may_read);
        let now = Instant::now();
        if pass.bytes >= min_bytes || pass.errors || pass.redirected || now >= deadline {
            return pass.send(b);
        }
        // A timeout means max_wait_ms passed.
        if tokio::time::timeout(deadline - now, waiter.notified())
            .await
            .is_err()
        {
            return read_all(b, &req, version, replica_id, None, may_read).send(b);
        }
    }
}

/// One pass over the requested partitions: the response, and what it would cost to send.
struct Pass {
    response: FetchResponse,
    /// Record bytes in the response.
    bytes: usize,
    /// Whether any partition failed (errors are answered at once, as Kafka does).
    errors: bool,
    /// Whether a partition names a preferred read replica (answered at once, as Kafka does).
    redirected: bool,
    /// Per partition read: what to count once this response is the one sent.
    reads: Vec<Read>,
    from_replica: bool,
}

/// One partition of a pass, for the accounting of the response actually sent.
struct Read {
    topic: String,
    bytes: usize,
    throttled: bool,
    error: Option<KafkaError>,
    partition: String,
    /// Who served a consumer's read ("leader" or "follower") and whether the client is in
    /// this broker's rack ("same", "other", "unknown"); `None` for a follower's fetch.
    consumer: Option<(&'static str, &'static str)>,
}

impl Pass {
    /// Counts the response (metrics, the leader's replication throttle, failures logged once
    /// per interval per code) and hands it over.
    fn send(self, b: &Broker) -> FetchResponse {
        let quota = &b.replicas.throttles().leader;
        for r in self.reads {
            match r.error {
                Some(e) => {
                    b.metrics
                        .failed_fetch_requests
                        .with_label_values(&[&r.topic])
                        .inc();
                    // A client retrying against a failed partition must not fill the log.
                    if !matches!(e, KafkaError::Log(LogError::OffsetOutOfRange { .. })) {
                        if let Some(left_out) = FETCH_ERRORS.check(&e.code().to_string()) {
                            tracing::warn!(partition = %r.partition, error = %e, left_out, "fetch failed");
                        }
                    }
                }
                None => {
                    if r.throttled {
                        quota.record(r.bytes);
                    }
                    // Kafka counts follower fetches as replication bytes, not bytes out.
                    if r.bytes > 0 && self.from_replica {
                        b.metrics.replication_bytes_out.inc_by(r.bytes as u64);
                    } else if r.bytes > 0 {
                        b.metrics
                            .bytes_out
                            .with_label_values(&[&r.topic])
                            .inc_by(r.bytes as u64);
                        if let Some((replica, rack)) = r.consumer {
                            b.metrics
                                .consumer_fetch_bytes
                                .with_label_values(&[replica, rack])
                                .inc_by(r.bytes as u64);
                        }
                    }
                    b.metrics
                        .fetch_requests
                        .with_label_values(&[&r.topic])
                        .inc();
                }
            }
        }
        self.response
    }
}

/// The topic a fetch entry names: by id from v13, by name before.
fn topic_name(
    image: &crate::metadata::MetadataImage,
    t: &kafka_protocol::messages::fetch_request::FetchTopic,
    version: i16,
) -> Option<String> {
    if version >= 13 {
        image.topic_by_id(t.topic_id).map(|m| m.name.clone())
    } else {
        Some(t.topic.0.to_string())
    }
}

/// Leader side of a follower's fetch: each partition's fetch offset is the follower's log end
/// offset. Moving high watermarks wake consumers; caught-up followers are proposed for the ISR.
fn record_replica_fetch(
    b: &Broker,
    req: &FetchRequest,
    version: i16,
    replica: crate::types::BrokerId,
) {
    let image = b.controller.image();
    let now = Instant::now();
    for t in &req.topics {
        let Some(name) = topic_name(&image, t, version) else {
            continue;
        };
        for fp in &t.partitions {
            let Ok(p) = b.replicas.leader(&name, fp.partition) else {
                continue;
            };
            if p.check_epoch(fp.current_leader_epoch).is_err() {
                continue;
            }
            if version >= 12 && diverging(&p, fp.fetch_offset, fp.last_fetched_epoch).is_some() {
                continue;
            }
            // A moved high watermark wakes the consumers waiting on this partition.
            let u = p.record_follower_fetch(replica, fp.fetch_offset, now);
            if let Some(change) = u.expand {
                tracing::info!(partition = %p.tp, follower = replica.0, isr = ?change.isr, "follower caught up: expanding ISR");
                crate::replica::isr::propose(b.controller.clone(), p.clone(), change);
            }
        }
    }
}

/// KIP-320 on the leader: the epoch and end offset a follower must truncate to when its last
/// fetched epoch does not end where it thinks (the leader has no such epoch, or it ends
/// before the fetch offset).
fn diverging(p: &Partition, fetch_offset: i64, last_fetched_epoch: i32) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = if last_fetched_epoch == p.leader_epoch().0 {
        // The current epoch ends at the log end, whether or not it has an entry yet.
        (last_fetched_epoch, p.log_end_offset().0)
    } else {
        let (e, o) = p.end_offset_for_epoch(LeaderEpoch(last_fetched_epoch))?;
        (e.0, o.0)
    };
    (epoch < last_fetched_epoch || end < fetch_offset).then_some((epoch, end))
}

/// A throttled follower's empty read: the partition's offsets, no batches (an offline log's
/// LSO falls back to the high watermark; its next real read reports the failure).
fn nothing_read(p: &Partition, fetch_offset: i64) -> FetchRead {
    let high_watermark = p.high_watermark();
    FetchRead {
        read: crate::log::ReadResult {
            records: Bytes::new(),
            log_start_offset: p.log_start_offset(),
            log_end_offset: p.log_end_offset(),
            next_offset: Offset(fetch_offset),
        },
        high_watermark,
        last_stable_offset: p.last_stable_offset().unwrap_or(high_watermark),
        aborted: None,
    }
}

/// One pass over the requested partitions, counting nothing yet (see [`Pass::send`]).
/// `replica_id` is the fetching follower's id, or negative for a consumer; `waiter` is
/// registered with every partition read, to be woken when one has news.
fn read_all(
    b: &Broker,
    req: &FetchRequest,
    version: i16,
    replica_id: i32,
    waiter: Option<&Arc<Notify>>,
    may_read: &(dyn Fn(&str) -> bool + Sync),
) -> Pass {
    let from_replica = replica_id >= 0;
    // KIP-392: a v11+ consumer may read from a follower, and may name its rack.
    let follower_reads = !from_replica && version >= 11;
    let client_rack = if follower_reads {
        req.rack_id.as_str()
    } else {
        ""
    };
    let same_rack = match (client_rack, b.config.rack.as_deref()) {
        ("", _) | (_, None) => "unknown",
        (c, Some(mine)) if c == mine => "same",
        _ => "other",
    };
    let mut redirected = false;
    // Followers read to the log end whatever they send; consumers as they ask (v4+).
    let isolation = if from_replica {
        Some(FetchIsolation::LogEnd)
    } else {
        FetchIsolation::for_consumer(req.isolation_level)
    };
    let mut reads = Vec::new();
    let image = b.controller.image();
    let quota = &b.replicas.throttles().leader;
    let mut remaining = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = topic_name(&image, t, version);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for fp in &t.partitions {
            let out = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                // Kafka's null: only a read_committed read answers a list (maybe empty).
                .with_aborted_transactions(None)
                .with_preferred_read_replica(BrokerId(-1));
            let Some(name) = &name else {
                errors = true;
                parts.push(out.with_error_code(ResponseError::UnknownTopicId.code()));
                continue;
            };
            if !may_read(name) {
                errors = true;
                parts.push(out.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
                continue;
            }
            // Followers fetch from leaders only; v11+ consumers from any replica here.
            let p = match b.replicas.leader(name, fp.partition) {
                Ok(p) => p,
                Err(e) => match b.replicas.get(name, fp.partition) {
                    Some(p) if follower_reads => p,
                    _ => {
                        errors = true;
                        parts.push(out.with_error_code(e.code()));
                        continue;
                    }
                },
            };
            if let Some(w) = waiter {
                p.watch_for_fetch(w);
            }
            if let Err(e) = p.check_epoch(fp.current_leader_epoch) {
                errors = true;
                parts.push(out.with_error_code(e.code()));
                continue;
            }
            let Some(isolation) = isolation else {
                errors = true;
                parts.push(out.with_error_code(ResponseError::InvalidRequest.code()));
                continue;
            };
            if let Some(preferred) =
                preferred_read_replica(b, &image, &p, client_rack, fp.fetch_offset)
            {
                redirected = true;
                let hw = p.high_watermark();
                parts.push(
                    out.with_high_watermark(hw.0)
                        .with_last_stable_offset(p.last_stable_offset().unwrap_or(hw).0)
                        .with_log_start_offset(p.log_start_offset().0)
                        .with_preferred_read_replica(BrokerId(preferred.0))
                        .with_records(Some(Bytes::new())),
                );
                continue;
            }
            if from_replica && version >= 12 {
                if let Some((epoch, end)) = diverging(&p, fp.fetch_offset, fp.last_fetched_epoch) {
                    errors = true;
                    let hw = p.high_watermark();
                    parts.push(
                        out.with_high_watermark(hw.0)
                            .with_last_stable_offset(p.last_stable_offset().unwrap_or(hw).0)
                            .with_log_start_offset(p.log_start_offset().0)
                            .with_diverging_epoch(
                                EpochEndOffset::default()
                                    .with_epoch(epoch)
                                    .with_end_offset(end),
                            )
                            .with_records(Some(Bytes::new())),
                    );
                    continue;
                }
            }
            let mut limit = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            // The leader replication throttle (`replica/throttle.rs`): a throttled follower
            // outside the ISR gets what the quota holds, nothing while it is used up.
            let throttled = from_replica
                && quota.rate().is_some()
                && !p.isr().contains(&crate::types::BrokerId(replica_id))
                && b.replicas
                    .topic_configs()
                    .by_name(&image, name)
                    .is_some_and(|c| {
                        c.leader_throttled
                            .contains(fp.partition, crate::types::BrokerId(b.config.node_id))
                    });
            if throttled {
                limit = limit.min(quota.available().unwrap_or(usize::MAX));
            }
            // KIP-74: the first batch of the response is returned whole even past the limits,
            // so a batch larger than max.partition.fetch.bytes can never stall a consumer.
            let min_one = total == 0;
            let out = out.with_log_start_offset(if version >= 5 {
                p.log_start_offset().0
            } else {
                -1
            });
            let read = if throttled && limit == 0 {
                Ok(nothing_read(&p, fp.fetch_offset))
            } else {
                p.fetch(Offset(fp.fetch_offset), limit, isolation, min_one)
            };
            match read {
                Ok(FetchRead {
                    read: r,
                    high_watermark,
                    last_stable_offset,
                    aborted,
                }) => {
                    let out = out
                        .with_high_watermark(high_watermark.0)
                        .with_last_stable_offset(last_stable_offset.0)
                        .with_aborted_transactions(aborted.map(|list| {
                            list.into_iter()
                                .map(|a| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(a.producer_id.0))
                                        .with_first_offset(a.first_offset.0)
                                })
                                .collect()
                        }));
                    let n = r.records.len();
                    total += n;
                    remaining = remaining.saturating_sub(n);
                    reads.push(Read {
                        topic: name.clone(),
                        bytes: n,
                        throttled,
                        error: None,
                        partition: p.tp.to_string(),
                        consumer: (!from_replica).then(|| {
                            (if p.is_leader() { "leader" } else { "follower" }, same_rack)
                        }),
                    });
                    parts.push(out.with_records(Some(r.records)));
                }
                Err(e) => {
                    errors = true;
                    let e = KafkaError::Log(e);
                    // As before the LSO existed: the partition's offsets beside the error.
                    let hw = p.high_watermark();
                    let lso = p.last_stable_offset().unwrap_or(hw);
                    parts.push(
                        out.with_error_code(e.code())
                            .with_high_watermark(hw.0)
                            .with_last_stable_offset(lso.0)
                            .with_records(Some(Bytes::new())),
                    );
                    reads.push(Read {
                        topic: name.clone(),
                        bytes: 0,
                        throttled: false,
                        error: Some(e),
                        partition: p.tp.to_string(),
                        consumer: None,
                    });
                }
            }
        }
        // v13+ identifies topics by id only; older versions by name only.
        let entry = if version >= 13 {
            FetchableTopicResponse::default().with_topic_id(t.topic_id)
        } else {
            FetchableTopicResponse::default().with_topic(t.topic.clone())
        };
        topics.push(entry.with_partitions(parts));
    }
    Pass {
        response: FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        bytes: total,
        errors,
        redirected,
        reads,
        from_replica,
    }
}

/// At the leader, the replica a consumer in `client_rack` should read `p` from instead
/// (`replica/selector.rs`); `None`: read here.
fn preferred_read_replica(
    b: &Broker,
    image: &crate::metadata::MetadataImage,
    p: &Partition,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<crate::types::BrokerId> {
    let selector = b.config.replication.replica_selector;
    if client_rack.is_empty() || !p.is_leader() || selector == ReplicaSelector::Leader {
        return None;
    }
    let isr = p.isr();
    let followers: Vec<Candidate> = p
        .followers()
        .into_iter()
        .map(|(id, state)| Candidate {
            id,
            rack: image.brokers.get(&id).and_then(|info| info.rack.clone()),
            log_end_offset: state.log_end_offset,
            in_sync: isr.contains(&id) && !image.fenced_brokers.contains(&id),
        })
        .collect();
    selector::preferred_read_replica(
        selector,
        client_rack,
        b.config.rack.as_deref(),
        &followers,
        fetch_offset,
    )
}
