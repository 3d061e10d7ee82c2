//! The cluster metadata as every layer reads it: the image (brokers, topics, partitions,
//! configs) published by the controller after each committed change. It sits below its users
//! (the controller that writes it, the replica manager, the group coordinator and the request
//! handlers that read it), as Kafka keeps `metadata/` below the controller and the replica
//! manager.

pub mod acl;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod image;
pub mod quota;
pub mod security;
pub mod topic_config;

pub use image::{BrokerInfo, MetadataImage, PartitionMeta, Reassignment, TopicMeta};
pub use topic_config::{TopicConfig, TopicConfigs};
