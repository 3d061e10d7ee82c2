//! Newtypes for the numbers the protocol passes around, so an offset is never mistaken for an
//! epoch or a broker id.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! newtype {
    ($(#[$m:meta])* $name:ident($inner:ty)) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                $name(v)
            }
        }
    };
}

newtype!(
    /// A position in a partition's log: the offset of one record.
    Offset(i64)
);
newtype!(
    /// The epoch of a partition's leader; bumped on every leader change.
    LeaderEpoch(i32)
);
newtype!(
    /// A node's id (`node.id`).
    BrokerId(i32)
);
newtype!(
    /// A producer id handed out by InitProducerId.
    ProducerId(i64)
);
newtype!(
    /// A producer's epoch; bumped when a producer with the same id is fenced or re-initialised.
    ProducerEpoch(i16)
);
newtype!(
    /// A partition's index inside its topic.
    PartitionIndex(i32)
);
newtype!(
    /// The epoch of a transaction coordinator (its `__transaction_state` partition's leader
    /// epoch), written into transaction markers to fence a stale coordinator.
    CoordinatorEpoch(i32)
);

impl Offset {
    /// The offset right after this one.
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

/// A topic and partition: one type for the broker, the client and the tools.
pub use rill_client::TopicPartition;

/// The transaction protocol of a request or a transaction (Kafka's `TransactionVersion`, the
/// level of the `transaction.version` feature): 0 and 1 are "transactions v1" (1 only makes
/// `__transaction_state` values flexible); 2 is KIP-890 part 2, where the coordinator bumps the
/// producer epoch at every commit or abort and partition leaders add partitions implicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TxnVersion(pub i16);

impl TxnVersion {
    /// No feature finalized: transactions v1, v0 `__transaction_state` values.
    pub const TV0: TxnVersion = TxnVersion(0);
    /// Transactions v1 with flexible (v1) `__transaction_state` values.
    pub const TV1: TxnVersion = TxnVersion(1);
    /// Transactions v2 (KIP-890 part 2).
    pub const TV2: TxnVersion = TxnVersion(2);
    /// The highest level this broker implements.
    pub const LATEST: TxnVersion = TxnVersion::TV2;

    /// Whether the coordinator bumps the epoch at every EndTxn (Kafka's `supportsEpochBump`).
    pub const fn supports_epoch_bump(self) -> bool {
        self.0 >= 2
    }

    /// The version a request's API version implies (Kafka's `transactionVersionForEndTxn` and
    /// the like): `first_v2` is the first API version a transactions-v2 client sends (EndTxn
    /// 5, AddPartitionsToTxn 4, Produce 12, TxnOffsetCommit 5).
    pub const fn of_request(version: i16, first_v2: i16) -> TxnVersion {
        if version >= first_v2 {
            TxnVersion::TV2
        } else {
            TxnVersion::TV0
        }
    }
}

impl fmt::Display for TxnVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TV_{}", self.0)
    }
}
