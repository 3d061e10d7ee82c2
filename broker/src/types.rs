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
