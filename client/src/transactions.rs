//! Transaction admin operations (KIP-664), as methods on [`Cluster`], doing what
//! kafka-transactions.sh does: list (ListTransactions on every broker, merged), describe
//! (FindCoordinator key type 1, then DescribeTransactions), describe producers (DescribeProducers
//! at each partition's leader), find hanging transactions and abort one (WriteTxnMarkers ABORT
//! at the partition's leader).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TransactionalId, WriteTxnMarkersRequest,
};

use super::admin::{missing, sb, topic_name, TopicPartition};
use super::{ClientError, Cluster};

/// At most this many partitions go into one DescribeProducers request (kafka-transactions.sh's
/// batch size), so scanning a large broker never builds one giant request.
pub const MAX_PARTITIONS_PER_REQUEST: usize = 500;

/// At most this many producer ids go into one ListTransactions filter, for the same reason.
const MAX_PRODUCER_IDS_PER_REQUEST: usize = 500;

/// kafka-transactions.sh's default for `find-hanging --max-transaction-timeout`: 15 minutes,
/// the broker default of `transaction.max.timeout.ms`.
pub const DEFAULT_MAX_TRANSACTION_TIMEOUT_MS: i64 = 15 * 60 * 1000;

/// A transactional id as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// The node coordinating it (the one that listed it).
    pub coordinator: i32,
    /// Its current producer id.
    pub producer_id: i64,
    /// Kafka's state name (`Ongoing`, `CompleteCommit`, ...).
    pub state: String,
}

/// What to list: Kafka's ListTransactions filters (empty = no filter).
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    /// Only these states (Kafka's names).
    pub states: Vec<String>,
    /// Only these producer ids.
    pub producer_ids: Vec<i64>,
    /// Only transactions running for longer than this (ms, KIP-994; needs ListTransactions
    /// v1, refused by older brokers).
    pub min_duration_ms: Option<i64>,
}

/// A transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransactionDescription {
    /// The coordinator's node id.
    pub coordinator: i32,
    /// The transactional id.
    pub transactional_id: String,
    /// Its current producer id.
    pub producer_id: i64,
    /// Its current producer epoch.
    pub producer_epoch: i16,
    /// Kafka's state name.
    pub state: String,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When the current (or last) transaction started; `None` when none has.
    pub start_time_ms: Option<i64>,
    /// The partitions of the open transaction (those still lacking a marker while one ends).
    pub partitions: Vec<TopicPartition>,
}

impl TransactionDescription {
    /// True while a transaction is open or finishing (markers not all written).
    pub fn is_open(&self) -> bool {
        matches!(
            self.state.as_str(),
            "Ongoing" | "PrepareCommit" | "PrepareAbort" | "PrepareEpochFence"
        )
    }
}

/// One producer of a partition as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActiveProducer {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// Sequence of its last record, -1 when none.
    pub last_sequence: i32,
    /// Timestamp of its last batch, -1 when none.
    pub last_timestamp: i64,
    /// Coordinator epoch of its last marker; `None` when it never had one.
    pub coordinator_epoch: Option<i32>,
    /// First offset of its open transaction, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

/// An open transaction in a partition that no coordinator will end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HangingTransaction {
    /// Where it is.
    pub partition: TopicPartition,
    /// The producer holding it open.
    pub producer: ActiveProducer,
}

/// Where `find-hanging` looks: partitions with a replica on a broker, or of a topic.
#[derive(Debug, Clone)]
pub enum HangingScope {
    /// Every partition with a replica on this broker.
    Broker(i32),
    /// One topic, every partition or one.
    Topic(String, Option<i32>),
    /// Every partition of the cluster (the console's view).
    Cluster,
}

/// What `abort` writes: an ABORT marker for this producer in this partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AbortSpec {
    /// The partition.
    pub partition: TopicPartition,
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The coordinator epoch written into the marker (0 when the producer never had one:
    /// no larger than any leader epoch, so the partition accepts it).
    pub coordinator_epoch: i32,
}

impl Cluster {
    /// Every transactional id of the cluster: ListTransactions on every broker (each lists the
    /// ids it coordinates), merged by id.
    pub async fn list_transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionListing>, ClientError> {
        self.metadata(Some(&[])).await?;
        let nodes: Vec<i32> = self.brokers().into_iter().map(|b| b.node_id).collect();
        let mut out = Vec::new();
        for node in nodes {
            let req = ListTransactionsRequest::default()
                .with_state_filters(filter.states.iter().map(|s| sb(s)).collect())
                .with_producer_id_filters(
                    filter.producer_ids.iter().map(|p| ProducerId(*p)).collect(),
                )
                .with_duration_filter(filter.min_duration_ms.unwrap_or(-1));
            let resp = self.send_to(node, req).await?;
            ClientError::check(
                resp.error_code,
                Some(&format!("ListTransactions on node {node}")),
            )?;
            out.extend(
                resp.transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.to_string(),
                        coordinator: node,
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    }),
            );
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out.dedup_by(|a, b| a.transactional_id == b.transactional_id);
        Ok(out)
    }

    /// Describes transactional id `id` at its coordinator (TRANSACTIONAL_ID_NOT_FOUND when it
    /// has none).
    pub async fn describe_transaction(
        &self,
        id: &str,
    ) -> Result<TransactionDescription, ClientError> {
        let coordinator = self.transaction_coordinator(id).await?;
        let req = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(sb(id))]);
        let resp = self.send_to(coordinator, req).await?;
        let t = resp
            .transaction_states
            .into_iter()
            .find(|t| *t.transactional_id.0 == *id)
            .ok_or_else(|| missing("DescribeTransactions", id))?;
        ClientError::check(t.error_code, Some(&format!("transactional id '{id}'")))?;
        let mut partitions: Vec<TopicPartition> = t
            .topics
            .iter()
            .flat_map(|tp| {
                tp.partitions
                    .iter()
                    .map(|p| TopicPartition::new(tp.topic.0.to_string(), *p))
            })
            .collect();
        partitions.sort();
        Ok(TransactionDescription {
            coordinator,
            transactional_id: id.to_string(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            state: t.transaction_state.to_string(),
            timeout_ms: t.transaction_timeout_ms,
            start_time_ms: Some(t.transaction_start_time_ms).filter(|t| *t >= 0),
            partitions,
        })
    }

    /// The producers of each partition, asked of its leader in batches of at most
    /// [`MAX_PARTITIONS_PER_REQUEST`]; each partition answers on its own (a missing one is
    /// UNKNOWN_TOPIC_OR_PARTITION, the others still answer).
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ActiveProducer>, ClientError>)>, ClientError> {
        let topics: Vec<String> = partitions
            .iter()
            .map(|tp| tp.topic.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let md = self.metadata(Some(&topics)).await?;
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        let mut out = Vec::new();
        for tp in partitions {
            let leader = md
                .topic(&tp.topic)
                .and_then(|t| t.partitions.iter().find(|p| p.partition == tp.partition))
                .map(|p| p.leader);
            match leader {
                Some(l) if l >= 0 => by_leader.entry(l).or_default().push(tp.clone()),
                Some(_) => out.push((
                    tp.clone(),
                    Err(ClientError::kafka(
                        ResponseError::LeaderNotAvailable,
                        format!("{tp} has no leader"),
                    )),
                )),
                None => out.push((
                    tp.clone(),
                    Err(ClientError::kafka(
                        ResponseError::UnknownTopicOrPartition,
                        format!("{tp} does not exist"),
                    )),
                )),
            }
        }
        for (leader, tps) in by_leader {
            for chunk in tps.chunks(MAX_PARTITIONS_PER_REQUEST) {
                out.extend(self.describe_producers_at(leader, chunk).await?);
            }
        }
        Ok(out)
    }

    async fn describe_producers_at(
        &self,
        node: i32,
        tps: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ActiveProducer>, ClientError>)>, ClientError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in tps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let req = DescribeProducersRequest::default().with_topics(
            by_topic
                .iter()
                .map(|(t, ps)| {
                    TopicRequest::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(ps.clone())
                })
                .collect(),
        );
        let resp = self.send_to(node, req).await?;
        let mut answers: HashMap<TopicPartition, Result<Vec<ActiveProducer>, ClientError>> =
            HashMap::new();
        for t in resp.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                let r = ClientError::check(
                    p.error_code,
                    Some(p.error_message.as_deref().unwrap_or(&tp.to_string())),
                )
                .map(|()| p.active_producers.iter().map(active_producer).collect());
                answers.insert(tp, r);
            }
        }
        Ok(tps
            .iter()
            .map(|tp| {
                let r = answers
                    .remove(tp)
                    .unwrap_or_else(|| Err(missing("DescribeProducers", &tp.to_string())));
                (tp.clone(), r)
            })
            .collect())
    }

    /// kafka-transactions.sh's `find-hanging`: the open transactions of the scope's partitions
    /// whose producer last wrote more than `max_timeout_ms` before `now_ms`, and whose
    /// coordinator either does not know the producer, or does not list the partition in the
    /// producer's transaction (so no marker will ever come).
    pub async fn find_hanging_transactions(
        &self,
        scope: &HangingScope,
        max_timeout_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<HangingTransaction>, ClientError> {
        let partitions = self.partitions_in(scope).await?;
        let mut candidates = Vec::new();
        for (tp, r) in self.describe_producers(&partitions).await? {
            let producers = r.map_err(|e| ClientError::Protocol(format!("{tp}: {e}")))?;
            for p in producers {
                if p.current_txn_start_offset.is_some()
                    && now_ms.saturating_sub(p.last_timestamp) > max_timeout_ms
                {
                    candidates.push(HangingTransaction {
                        partition: tp.clone(),
                        producer: p,
                    });
                }
            }
        }
        if candidates.is_empty() {
            return Ok(candidates);
        }
        // Which transactional id (if any) each producer id has now.
        let pids: Vec<i64> = candidates
            .iter()
            .map(|c| c.producer.producer_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut ids: HashMap<i64, String> = HashMap::new();
        for chunk in pids.chunks(MAX_PRODUCER_IDS_PER_REQUEST) {
            let filter = TransactionFilter {
                producer_ids: chunk.to_vec(),
                ..Default::default()
            };
            for l in self.list_transactions(&filter).await? {
                if chunk.contains(&l.producer_id) {
                    ids.insert(l.producer_id, l.transactional_id);
                }
            }
        }
        let mut descriptions: HashMap<String, Option<TransactionDescription>> = HashMap::new();
        for id in ids.values() {
            if descriptions.contains_key(id) {
                continue;
            }
            let d = match self.describe_transaction(id).await {
                Ok(d) => Some(d),
                Err(e) if e.kafka_error() == Some(ResponseError::TransactionalIdNotFound) => None,
                Err(e) => return Err(e),
            };
            descriptions.insert(id.clone(), d);
        }
        Ok(candidates
            .into_iter()
            .filter(|c| {
                match ids
                    .get(&c.producer.producer_id)
                    .and_then(|id| descriptions.get(id))
                {
                    // The coordinator lists the partition: it will still write the marker.
                    Some(Some(d)) => !d.partitions.contains(&c.partition),
                    _ => true,
                }
            })
            .collect())
    }

    /// The partitions `find-hanging` scans for a scope.
    async fn partitions_in(
        &self,
        scope: &HangingScope,
    ) -> Result<Vec<TopicPartition>, ClientError> {
        let md = match scope {
            HangingScope::Topic(t, Some(p)) => return Ok(vec![TopicPartition::new(t.clone(), *p)]),
            HangingScope::Topic(t, None) => self.metadata(Some(std::slice::from_ref(t))).await?,
            HangingScope::Broker(_) | HangingScope::Cluster => self.metadata(None).await?,
        };
        let mut out = Vec::new();
        for t in &md.topics {
            if let HangingScope::Topic(_, _) = scope {
                ClientError::check(t.error_code, Some(&format!("topic '{}'", t.name)))?;
            }
            for p in &t.partitions {
                let on_broker = match scope {
                    HangingScope::Broker(b) => p.replicas.contains(b),
                    HangingScope::Topic(..) | HangingScope::Cluster => true,
                };
                if on_broker {
                    out.push(TopicPartition::new(t.name.clone(), p.partition));
                }
            }
        }
        Ok(out)
    }

    /// What `abort --start-offset` aborts: the producer whose open transaction in `partition`
    /// starts at `start_offset`, as DescribeProducers reports it.
    pub async fn abort_spec(
        &self,
        partition: &TopicPartition,
        start_offset: i64,
    ) -> Result<AbortSpec, ClientError> {
        let answers = self
            .describe_producers(std::slice::from_ref(partition))
            .await?;
        let producers = answers
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .ok_or_else(|| missing("DescribeProducers", &partition.to_string()))??;
        let p = producers
            .into_iter()
            .find(|p| p.current_txn_start_offset == Some(start_offset))
            .ok_or_else(|| {
                ClientError::Protocol(format!(
                    "no open transaction starts at offset {start_offset} in {partition}"
                ))
            })?;
        let producer_epoch = i16::try_from(p.producer_epoch).map_err(|_| {
            ClientError::Protocol(format!("producer epoch {} out of range", p.producer_epoch))
        })?;
        Ok(AbortSpec {
            partition: partition.clone(),
            producer_id: p.producer_id,
            producer_epoch,
            coordinator_epoch: p.coordinator_epoch.unwrap_or(0).max(0),
        })
    }

    /// Writes an ABORT marker for `spec` at the partition's leader (WriteTxnMarkers), which
    /// ends the producer's open transaction there.
    pub async fn abort_transaction(&self, spec: &AbortSpec) -> Result<(), ClientError> {
        let tp = &spec.partition;
        let md = self.metadata(Some(std::slice::from_ref(&tp.topic))).await?;
        let leader = md
            .topic(&tp.topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == tp.partition))
            .map(|p| p.leader)
            .ok_or_else(|| {
                ClientError::kafka(
                    ResponseError::UnknownTopicOrPartition,
                    format!("{tp} does not exist"),
                )
            })?;
        if leader < 0 {
            return Err(ClientError::kafka(
                ResponseError::LeaderNotAvailable,
                format!("{tp} has no leader"),
            ));
        }
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(spec.producer_id))
                .with_producer_epoch(spec.producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(spec.coordinator_epoch.max(0))
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(topic_name(&tp.topic))
                    .with_partition_indexes(vec![tp.partition])])]);
        let resp = self.send_to(leader, req).await?;
        let code = resp
            .markers
            .iter()
            .flat_map(|m| m.topics.iter())
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .map(|p| p.error_code)
            .ok_or_else(|| missing("WriteTxnMarkers", &tp.to_string()))?;
        ClientError::check(code, Some(&format!("abort marker in {tp}")))
    }
}

fn active_producer(
    p: &kafka_protocol::messages::describe_producers_response::ProducerState,
) -> ActiveProducer {
    ActiveProducer {
        producer_id: p.producer_id.0,
        producer_epoch: p.producer_epoch,
        last_sequence: p.last_sequence,
        last_timestamp: p.last_timestamp,
        coordinator_epoch: Some(p.coordinator_epoch).filter(|e| *e >= 0),
        current_txn_start_offset: Some(p.current_txn_start_offset).filter(|o| *o >= 0),
    }
}
