//! `rill-client`: the one Kafka client in Rill, a small async client over `kafka-protocol`
//! (no codec of its own), used by the brokers (replica fetchers, liveness probes), the `rill`
//! CLI and the console. It depends on nothing of the broker; the broker depends on it, so
//! the types both speak (`TopicPartition`, `NewTopic`) and the bounded reading of record
//! batches (`records`) live here.
//!
//! - [`Connection`]: one TCP connection. `connect` runs ApiVersions (v3, with KIP-511's
//!   fallback) and records the broker's ranges; `send` picks the highest version both
//!   sides speak, frames header and body, checks the correlation id, and enforces a
//!   per-request timeout.
//! - [`Cluster`]: bootstrap from `host:port[,...]`, Metadata, one connection per node,
//!   routing (`send_to`, `send_to_any`, `send_to_controller`, `coordinator`), and typed
//!   admin operations (topics, configs, offsets, groups) in `admin.rs` and `groups.rs`.
//! - [`ClientError`]: every failure, Kafka error codes included.

mod acls;
mod admin;
mod brokers;
pub mod browse;
mod cluster;
mod connection;
pub mod describe;
mod error;
mod groups;
mod leaders;
pub mod properties;
pub mod quorum;
pub mod quotas;
mod reassign;
pub mod records;
pub mod resource;
pub mod security;
mod transactions;
pub mod users;

pub use acls::{Acl, AclFilter};
pub use admin::{
    ConfigEntry, ConfigOp, ConfigSource, ItemResult, ListedOffset, NewTopic, OffsetSpec,
    TopicPartition,
};
pub use brokers::{ClusterBroker, ClusterDescription};
pub use cluster::{
    parse_bootstrap, BrokerNode, Cluster, ClusterMetadata, PartitionMetadata, TopicMetadata,
};
pub use connection::{Connection, ConnectionConfig};
pub use error::{error_name, ClientError};
pub use groups::{decode_assignment, CommittedOffset, GroupDescription, GroupListing, GroupMember};
pub use leaders::{ElectionKind, ElectionResult};
pub use reassign::{OngoingReassignment, PartitionResult};
pub use transactions::{
    AbortSpec, ActiveProducer, HangingScope, HangingTransaction, TransactionDescription,
    TransactionFilter, TransactionListing, DEFAULT_MAX_TRANSACTION_TIMEOUT_MS,
    MAX_PARTITIONS_PER_REQUEST,
};
