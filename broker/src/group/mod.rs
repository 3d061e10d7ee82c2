//! Consumer groups (classic protocol) and committed offsets, persisted in `__consumer_offsets`.

pub mod consumer;
pub mod coordinator;
pub mod entry;
pub mod member;
pub mod offsets_log;
pub mod state;
pub mod store;
pub mod txn_offsets;

pub use crate::config::group::GroupConfig;
pub use coordinator::{GroupCoordinator, OffsetToCommit, TxnOffsetCommit};
