//! Kafka transactions: the transaction coordinator's state, as pure logic.
//!
//! Kafka makes a producer's writes to many partitions atomic with a coordinator per
//! transactional id (KIP-98). The coordinator keeps, for each id, the producer id and epoch it
//! handed out, the partitions the open transaction has touched and where the transaction is
//! (Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort). Every change
//! is first *prepared* (a pending state blocks other requests for the id with
//! CONCURRENT_TRANSACTIONS), then appended to `__transaction_state` with acks=-1, then
//! *completed*; a new coordinator rebuilds its cache by replaying that topic. Rill follows
//! Kafka 3.x ("transactions v1": no epoch bump per transaction), the version every client
//! takes while no `transaction.version` feature is advertised.
//!
//! What is here is the part with no I/O, so it is tested by tables rather than clusters:
//!
//! - [`state`]: one transactional id's metadata and its transitions for InitProducerId,
//!   AddPartitionsToTxn (the client path, v0-3), AddOffsetsToTxn, EndTxn, marker completion,
//!   the timeout abort and the expiry of idle ids, each a function of the request and an
//!   explicit `now_ms`, returning the record to append or the error Kafka answers. Producer ids
//!   are allocated by the caller (the controller hands out blocks), never here.
//! - [`store`]: the `__transaction_state` key and value records, byte for byte Kafka's, so
//!   Kafka's own tools can read Rill's topic and a corrupt record is refused, never trusted.
//! - [`TxnConfig`]: Kafka's `transaction.*` broker settings and defaults.
//!
//! `SPEC.md` beside this file is the cited spec of Kafka's semantics (coordinator states and
//! errors, markers, LSO and `.txnindex`, read_committed, KIP-890, librdkafka's behaviour) and
//! the plan in shippable steps.
//!
//! What comes later: the coordinator (per-partition caches loaded on leadership, the
//! append-then-complete loop, the timeout and expiry tasks), the WriteTxnMarkers sender, the
//! transactional producer state and LSO in the partition log, the request handlers, and
//! parsing [`TxnConfig`] from `server.properties`.

pub mod error;
pub mod state;
pub mod status;
pub mod store;

/// The transaction coordinator's broker settings, with Kafka's names and defaults
/// (Kafka's `TransactionStateManagerConfig` and `TransactionLogConfig`). Not yet read from
/// `server.properties`: the coordinator that uses them will add the parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000, 15 min): the largest `transaction.timeout.ms` a
    /// producer may ask for; a larger one gets INVALID_TRANSACTION_TIMEOUT, so a client cannot
    /// pin the last stable offset of its partitions for longer than the operator allows.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000, 7 days): an id idle this long (Empty,
    /// CompleteCommit or CompleteAbort, no update since) is removed with a tombstone.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often open
    /// transactions are checked against their timeout and aborted.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000, 1 h): how often
    /// idle ids are checked for expiry.
    pub remove_expired_interval_ms: i64,
    /// `transaction.state.log.num.partitions` (50): partitions of `__transaction_state`; an id
    /// lives in [`store::partition_for`] of it, so it must not change once the topic exists.
    pub log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3; capped at the live brokers when the topic
    /// is created, as for `__consumer_offsets`).
    pub log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (2): the topic's `min.insync.replicas`.
    pub log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (104857600, 100 MiB): the topic's `segment.bytes`
    /// (small, so compaction keeps replay on leadership short).
    pub log_segment_bytes: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            log_num_partitions: 50,
            log_replication_factor: 3,
            log_min_isr: 2,
            log_segment_bytes: 100 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TxnConfig;

    #[test]
    fn defaults_are_kafkas() {
        let c = TxnConfig::default();
        assert_eq!(c.max_timeout_ms, 900000);
        assert_eq!(c.id_expiration_ms, 604800000);
        assert_eq!(c.abort_timed_out_interval_ms, 10000);
        assert_eq!(c.remove_expired_interval_ms, 3600000);
        assert_eq!(c.log_num_partitions, 50);
        assert_eq!(c.log_replication_factor, 3);
        assert_eq!(c.log_min_isr, 2);
        assert_eq!(c.log_segment_bytes, 104857600);
    }
}
