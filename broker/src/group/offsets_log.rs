//! The group coordinator's narrow view of its node (Kafka's `PartitionWriter` idea): the
//! metadata image to find `__consumer_offsets` and its leaders, this node's replicas of that
//! topic to append to and replay, and the controller to create it on first use. Nothing else
//! of the node is reachable from the coordinator.

use std::sync::Arc;

use crate::controller::Controller;
use crate::metadata::MetadataImage;
use crate::replica::{Partition, ReplicaManager};
use crate::types::BrokerId;

use super::store::OFFSETS_TOPIC;

/// Handles to the offsets log of one node.
pub struct OffsetsLog {
    /// This node.
    pub node: BrokerId,
    pub(super) controller: Arc<Controller>,
    pub(super) replicas: Arc<ReplicaManager>,
}

impl OffsetsLog {
    /// The handles for node `node`.
    pub fn new(
        node: BrokerId,
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
    ) -> OffsetsLog {
        OffsetsLog {
            node,
            controller,
            replicas,
        }
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// This node's replica of `__consumer_offsets` partition `p`, if it hosts one.
    pub fn partition(&self, p: i32) -> Option<Arc<Partition>> {
        self.replicas.get(OFFSETS_TOPIC, p)
    }
}
