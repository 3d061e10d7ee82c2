//! Hosted partition replicas: opening, placing and deleting their logs as metadata changes,
//! serving appends and reads, and waking long-polling fetches.

pub mod manager;
pub mod partition;

pub use manager::ReplicaManager;
pub use partition::Partition;
