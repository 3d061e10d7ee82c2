//! Hosted partition replicas: opening, placing and deleting their logs as metadata changes,
//! serving appends and reads, waking long-polling fetches, and replication: followers fetch
//! from leaders (`fetcher`), leaders track followers and keep the ISR (`partition`, `isr`).

pub mod checkpoint;
pub mod fetcher;
pub mod isr;
pub mod log_dirs;
pub mod manager;
pub mod partition;
pub mod selector;
pub mod throttle;

pub use manager::ReplicaManager;
pub use partition::{Partition, VerificationGuard};
