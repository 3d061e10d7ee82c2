//! Client quotas at the request boundary (`quota/` measures, this decides what a request
//! costs and how its answer says so): a Produce costs its request bytes
//! (`producer_byte_rate`), a consumer's Fetch its answer's record bytes
//! (`consumer_byte_rate`, the fetch capped beforehand at what the quota allows per window and
//! answered empty when throttled, as Kafka does), and every request its handling time
//! (`request_percentage`). The answer carries the longest throttle in `throttle_time_ms` and
//! goes out at once; the connection then reads nothing more for that long (KIP-219: Kafka
//! 3.7-4.1 never delay an answer, whatever its version, and mute the channel instead).
//!
//! CreateTopics, CreatePartitions and DeleteTopics cost their partitions against
//! `controller_mutation_rate` (KIP-599, [`Mutations`]): from CreateTopics v6, CreatePartitions
//! v3 and DeleteTopics v5 a client already over its quota gets THROTTLING_QUOTA_EXCEEDED for
//! each further topic; older versions are only throttled. Kafka counts them on the active
//! controller; here each node counts what it is asked, so a client spreading its requests
//! over N nodes gets up to N times its quota.
//!
//! Exempt, as in Kafka: followers' fetches and the broker-to-broker requests
//! (WriteTxnMarkers, AddPartitionsToTxn v4+), and the SASL exchange.

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;

use crate::context::Broker;
use crate::quota::{ClientRef, QuotaKind};

/// A response whose `throttle_time_ms` can be set.
pub trait ThrottleField {
    /// The field, or `None` for a response without one.
    fn throttle_field(&mut self) -> Option<&mut i32>;
}

macro_rules! with_throttle_field {
    ($($t:ty),* $(,)?) => {
        $(impl ThrottleField for $t {
            fn throttle_field(&mut self) -> Option<&mut i32> {
                Some(&mut self.throttle_time_ms)
            }
        })*
    };
}

with_throttle_field!(
    ProduceResponse,
    FetchResponse,
    ListOffsetsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    SyncGroupResponse,
    DescribeGroupsResponse,
    ListGroupsResponse,
    ApiVersionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DeleteRecordsResponse,
    InitProducerIdResponse,
    OffsetForLeaderEpochResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    TxnOffsetCommitResponse,
    DescribeAclsResponse,
    CreateAclsResponse,
    DeleteAclsResponse,
    DescribeConfigsResponse,
    AlterConfigsResponse,
    DescribeLogDirsResponse,
    CreatePartitionsResponse,
    DeleteGroupsResponse,
    ElectLeadersResponse,
    IncrementalAlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    OffsetDeleteResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeClusterResponse,
    DescribeProducersResponse,
    DescribeTransactionsResponse,
    ListTransactionsResponse,
    DescribeTopicPartitionsResponse,
    AddRaftVoterResponse,
    RemoveRaftVoterResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
);

macro_rules! without_throttle_field {
    ($($t:ty),* $(,)?) => {
        $(impl ThrottleField for $t {
            fn throttle_field(&mut self) -> Option<&mut i32> {
                None
            }
        })*
    };
}

without_throttle_field!(WriteTxnMarkersResponse, DescribeQuorumResponse);

/// Who a request is measured for.
pub struct Who<'a> {
    /// The request's client.
    pub client: ClientRef<'a>,
    /// When handling began.
    pub started: Instant,
    /// Exempt from every quota (broker-to-broker traffic).
    pub exempt: bool,
}

/// What a request's quotas decided: how long the connection is muted after the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttle {
    /// How long the connection reads nothing after answering.
    pub delay: Duration,
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Caps a consumer's fetch at what its quota allows per window.
pub fn cap_fetch(b: &Broker, req: &mut FetchRequest, version: i16, who: &Who<'_>) {
    if who.exempt || is_follower(req, version) {
        return;
    }
    let image = b.controller.image();
    if let Some(max) = b
        .quotas
        .max_in_window(&image.client_quotas, QuotaKind::Fetch, who.client)
    {
        let cap = i32::try_from(max).unwrap_or(i32::MAX).max(1);
        req.max_bytes = req.max_bytes.min(cap);
    }
}

/// Whether a fetch comes from a follower.
pub fn is_follower(req: &FetchRequest, version: i16) -> bool {
    let id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    id >= 0
}

/// Records a Produce's `bytes` for its client; the throttle it earned.
pub fn produce(b: &Broker, bytes: usize, who: &Who<'_>) -> Duration {
    if who.exempt {
        return Duration::ZERO;
    }
    let image = b.controller.image();
    b.quotas.record(
        &image.client_quotas,
        QuotaKind::Produce,
        who.client,
        bytes as f64,
        Instant::now(),
    )
}

/// Records a consumer Fetch's answer bytes; when that throttles the client, the answer
/// becomes an empty one (and its bytes are taken back: they are not sent).
pub fn fetch(b: &Broker, resp: &mut FetchResponse, who: &Who<'_>) -> Duration {
    if who.exempt {
        return Duration::ZERO;
    }
    let image = b.controller.image();
    let bytes: usize = resp
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let now = Instant::now();
    let quotas = &image.client_quotas;
    let t = b
        .quotas
        .record(quotas, QuotaKind::Fetch, who.client, bytes as f64, now);
    if !t.is_zero() {
        b.quotas
            .unrecord(quotas, QuotaKind::Fetch, who.client, bytes as f64, now);
        resp.responses.clear();
    }
    t
}

/// KIP-599's partition mutation quota over one request, for the handlers that create and
/// delete partitions.
pub struct Mutations<'a> {
    b: &'a Broker,
    client: ClientRef<'a>,
    strict: bool,
    throttle: Duration,
}

impl<'a> Mutations<'a> {
    /// The quota of the request `ctx` is, strict (refusing) when `strict`.
    pub fn new(b: &'a Broker, ctx: &'a super::Ctx<'_>, strict: bool) -> Mutations<'a> {
        Mutations {
            b,
            client: ctx.quota_client(),
            strict,
            throttle: Duration::ZERO,
        }
    }

    /// Whether a mutation may go ahead: in strict mode, THROTTLING_QUOTA_EXCEEDED while the
    /// client is over its quota.
    pub fn admit(&mut self) -> Result<(), crate::error::KafkaError> {
        if !self.strict {
            return Ok(());
        }
        let image = self.b.controller.image();
        let t = self
            .b
            .quotas
            .mutation(&image.client_quotas, self.client, None, Instant::now());
        self.throttle = self.throttle.max(t);
        if t.is_zero() {
            Ok(())
        } else {
            Err(crate::error::KafkaError::ThrottlingQuotaExceeded(
                "The throttling quota has been exceeded.".into(),
            ))
        }
    }

    /// Counts `partitions` created or deleted.
    pub fn record(&mut self, partitions: u32) {
        let image = self.b.controller.image();
        let t = self.b.quotas.mutation(
            &image.client_quotas,
            self.client,
            Some(partitions),
            Instant::now(),
        );
        self.throttle = self.throttle.max(t);
    }

    /// The throttle for the answer's `throttle_time_ms`.
    pub fn throttle_ms(&self) -> i32 {
        ms(self.throttle)
    }
}

/// Records the request's handling time and settles its throttle: the longest of `own` (a
/// byte quota's), what the handler put in the answer (a mutation quota's) and the request
/// quota's, written into the answer.
pub fn finish<R: ThrottleField>(
    b: &Broker,
    api: ApiKey,
    resp: &mut R,
    own: Duration,
    who: &Who<'_>,
) -> Throttle {
    if who.exempt {
        return Throttle::default();
    }
    let image = b.controller.image();
    let now = Instant::now();
    // Kafka records request time as percent-seconds: a second of one thread is 100.
    let percent = now.saturating_duration_since(who.started).as_secs_f64() * 100.0;
    let request = b.quotas.record(
        &image.client_quotas,
        QuotaKind::Request,
        who.client,
        percent,
        now,
    );
    let set_by_handler = resp.throttle_field().map_or(Duration::ZERO, |f| {
        Duration::from_millis(u64::try_from(*f).unwrap_or(0))
    });
    let own = own.max(set_by_handler);
    let delay = own.max(request);
    if delay.is_zero() {
        return Throttle::default();
    }
    let kind = if request > own {
        QuotaKind::Request
    } else if api == ApiKey::Fetch {
        QuotaKind::Fetch
    } else if api == ApiKey::Produce {
        QuotaKind::Produce
    } else {
        QuotaKind::ControllerMutation
    };
    b.quotas.count_throttled(kind);
    if let Some(field) = resp.throttle_field() {
        *field = (*field).max(ms(delay));
    }
    Throttle { delay }
}
