//! Kafka transactions: the transaction coordinator.
//!
//! Kafka makes a producer's writes to many partitions atomic with a coordinator per
//! transactional id (KIP-98). The coordinator keeps, for each id, the producer id and epoch it
//! handed out, the partitions the open transaction has touched and where the transaction is
//! (Empty → Ongoing → PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort). Every change
//! is first *prepared* (a pending state blocks other requests for the id with
//! CONCURRENT_TRANSACTIONS), then appended to `__transaction_state` with acks=-1, then
//! *completed*; a new coordinator rebuilds its cache by replaying that topic. Both protocols
//! are served, chosen per request version as Kafka 4.1 does: "transactions v1" (Kafka 3.x: the
//! client adds partitions, the epoch stays for the producer's life) and "transactions v2"
//! (KIP-890 part 2, `SPEC-TV2.md`: EndTxn v5 bumps the epoch at every commit or abort, so the
//! markers fence late writes of the transaction they end, and partition leaders add the
//! partitions a Produce v12 / TxnOffsetCommit v5 writes to). The Java client 4.x takes v2 when
//! ApiVersions finalizes `transaction.version` 2 (the broker property of that name);
//! librdkafka, kafka-python and aiokafka speak v1.
//!
//! - [`state`] (with [`status`], [`error`]): one transactional id's metadata and its
//!   transitions as pure functions of the request and an explicit `now_ms`, tested by tables
//!   (`state/end.rs`: ending a transaction, v1 and v2, and the coordinator's own aborts).
//!   Producer ids are allocated by the caller (the controller hands out blocks), never here.
//! - [`store`]: the `__transaction_state` key and value records, byte for byte Kafka's, so
//!   Kafka's own tools can read Rill's topic and a corrupt record is refused, never trusted.
//! - [`coordinator`]: the ids of the `__transaction_state` partitions this node leads, loaded
//!   on leadership; prepare → append → replicate → complete; the timeout and expiry tasks.
//! - [`markers`]: COMMIT/ABORT markers to every partition of a transaction, locally or with
//!   WriteTxnMarkers to the partition's leader.
//! - [`peers`]: connections to the other nodes; [`verify`]: KIP-890 verification of a
//!   producer's first transactional write to a partition.
//! - [`txn_log`]: the coordinator's narrow view of the node.
//! - [`TxnConfig`]: Kafka's `transaction.*` broker settings (`config/txn.rs`).
//!
//! `SPEC.md` beside this file is the cited spec of Kafka's semantics (coordinator states and
//! errors, markers, LSO and `.txnindex`, read_committed, KIP-890, librdkafka's behaviour) and
//! the plan in shippable steps.

pub mod coordinator;
pub mod error;
pub mod markers;
pub mod peers;
pub mod state;
pub mod status;
pub mod store;
pub mod txn_log;
pub mod verify;

pub use coordinator::TxnCoordinator;

pub use crate::config::txn::TxnConfig;
