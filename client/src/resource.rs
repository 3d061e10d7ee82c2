//! Kafka's `ConfigResource.Type` codes (DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs): the one definition, used by the client and the broker's
//! handlers alike.

/// A topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// A broker.
pub const RESOURCE_BROKER: i8 = 4;
