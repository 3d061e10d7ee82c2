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

impl Offset {
    /// The offset right after this one.
    pub fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

/// A topic and partition, the address of one partition log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Makes a topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The directory name Kafka uses for this partition's log: `topic-N`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
