//! `/transactions`: the cluster's transactional ids with their state, age and partitions;
//! hanging transactions (open past their timeout, or open in a partition with no coordinator
//! to end them) highlighted, and a two-step abort of the latter.

use askama::Template;
use serde::Serialize;

use crate::{FormState, Layout};

/// One transactional id as its coordinator describes it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TransactionRow {
    /// The transactional id.
    pub transactional_id: String,
    /// Kafka's state name (`Ongoing`, ...); `unknown` when it could not be described.
    pub state: String,
    /// Producer id, when known.
    pub producer_id: Option<i64>,
    /// Producer epoch, when known.
    pub producer_epoch: Option<i16>,
    /// How long the open transaction has run (ms); `None` when no transaction is open or its
    /// start time is unknown (never 0 in its place).
    pub age_ms: Option<i64>,
    /// The producer's transaction timeout (ms), when known.
    pub timeout_ms: Option<i32>,
    /// The transaction's partitions (`topic-N`).
    pub partitions: Vec<String>,
    /// The coordinator's node id.
    pub coordinator: i32,
    /// Open for longer than its timeout (the coordinator should have aborted it).
    pub hanging: bool,
    /// Why it could not be described, if it could not.
    pub error: Option<String>,
}

impl TransactionRow {
    /// The age for people: `unknown` when there is none to show.
    pub fn age(&self) -> String {
        self.age_ms.map_or_else(
            || "unknown".into(),
            |ms| crate::format::duration_secs(ms as f64 / 1000.0),
        )
    }

    /// The timeout for people.
    pub fn timeout(&self) -> String {
        self.timeout_ms.map_or_else(
            || "unknown".into(),
            |ms| crate::format::duration_secs(f64::from(ms) / 1000.0),
        )
    }

    /// A cell for an optional number.
    pub fn or_unknown<T: ToString>(v: &Option<T>) -> String {
        v.as_ref().map_or_else(|| "unknown".into(), T::to_string)
    }
}

/// An open transaction in a partition that no coordinator will end (find-hanging).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HangingRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The producer holding it open.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i32,
    /// Coordinator epoch of its last marker, `None` when it never had one.
    pub coordinator_epoch: Option<i32>,
    /// First offset of the open transaction: the partition's last stable offset is held here.
    pub start_offset: i64,
    /// The producer's last write (ms since the epoch).
    pub last_timestamp: i64,
    /// Since that write (ms).
    pub age_ms: i64,
}

impl HangingRow {
    /// The age for people.
    pub fn age(&self) -> String {
        crate::format::duration_secs(self.age_ms as f64 / 1000.0)
    }
}

/// `/transactions`.
#[derive(Debug, Template, Serialize)]
#[template(path = "transactions.html")]
pub struct TransactionsPage {
    /// Frame.
    pub layout: Layout,
    /// Every transactional id (at most [`TransactionsPage::MAX_ROWS`]).
    pub transactions: Vec<TransactionRow>,
    /// Ids listed before the row cap.
    pub total: usize,
    /// Open transactions blocking a partition with no coordinator to end them.
    pub hanging: Vec<HangingRow>,
    /// The age past which a partition's open transaction is searched for (ms).
    pub max_transaction_timeout_ms: i64,
    /// Why the list could not be read.
    pub error: Option<String>,
    /// Why the partitions could not be searched for hanging transactions.
    pub hanging_error: Option<String>,
    /// A transaction awaiting the abort confirmation.
    pub pending_abort: Option<HangingRow>,
    /// The abort form after an error.
    pub form: FormState,
}

impl TransactionsPage {
    /// Rows described and rendered at most (the count says how many more exist).
    pub const MAX_ROWS: usize = 500;

    /// The search's age threshold for people.
    pub fn max_timeout(&self) -> String {
        crate::format::duration_secs(self.max_transaction_timeout_ms as f64 / 1000.0)
    }
}
