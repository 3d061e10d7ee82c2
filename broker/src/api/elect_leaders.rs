//! ElectLeaders (KIP-460): preferred or unclean leader elections on request, through the
//! controller (`controller/election.rs`). Any node takes the request: the election is a
//! metadata proposal, which the metadata quorum forwards to its leader.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::sb;
use crate::context::Broker;
use crate::controller::election::ElectionType;

/// Bounds for the request's `timeout_ms` (Kafka's default is 60 s).
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Handles ElectLeaders.
pub async fn handle(
    b: &Broker,
    req: ElectLeadersRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> ElectLeadersResponse {
    if !ctx.authz.cluster(crate::metadata::acl::AclOperation::Alter) {
        return ElectLeadersResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        );
    }
    // v0 has no election type: it is always a preferred election.
    let code = if version == 0 { 0 } else { req.election_type };
    let Some(kind) = ElectionType::from_code(code) else {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    };
    let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0))
        .clamp(MIN_TIMEOUT, MAX_TIMEOUT);
    let targets = req.topic_partitions.map(|tps| {
        let mut seen = std::collections::BTreeSet::new();
        tps.into_iter()
            .flat_map(|tp| {
                let name = tp.topic.0.to_string();
                tp.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            // A partition named twice is elected once.
            .filter(|tp| seen.insert(tp.clone()))
            .collect::<Vec<_>>()
    });
    let outcomes = b.controller.elect_leaders(kind, targets, timeout).await;
    // Grouped by topic in first-seen order, as Kafka answers.
    let mut order: Vec<String> = Vec::new();
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for o in outcomes {
        let r = PartitionResult::default().with_partition_id(o.partition);
        let r = match o.result {
            Ok(()) => r,
            Err(e) => r.with_error_code(e.code()).with_error_message(e.message()),
        };
        if !by_topic.contains_key(&o.topic) {
            order.push(o.topic.clone());
        }
        by_topic.entry(o.topic).or_default().push(r);
    }
    let results = order
        .into_iter()
        .map(|t| {
            let parts = by_topic.remove(&t).unwrap_or_default();
            ReplicaElectionResult::default()
                .with_topic(TopicName(sb(t)))
                .with_partition_result(parts)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}
