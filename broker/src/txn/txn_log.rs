//! The transaction coordinator's narrow view of its node, as `group/offsets_log.rs` is the
//! group coordinator's: the metadata image (the `__transaction_state` leaders, the partitions
//! a transaction touches and their leaders), this node's replicas (its own log partitions and
//! the partitions it writes markers to), the controller (creating the topic, producer ids),
//! the group coordinator (offsets committed in a transaction become visible when the marker
//! lands in `__consumer_offsets`) and the connections markers travel over to other nodes.

use std::sync::Arc;

use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::metadata::MetadataImage;
use crate::replica::{Partition, ReplicaManager};
use crate::types::BrokerId;

use super::peers::PeerClient;
use super::store::TRANSACTION_STATE_TOPIC;

/// Handles to the parts of one node the transaction coordinator uses.
pub struct TxnLog {
    /// This node.
    pub node: BrokerId,
    pub(super) controller: Arc<Controller>,
    pub(super) replicas: Arc<ReplicaManager>,
    pub(super) groups: Arc<GroupCoordinator>,
    pub(super) peers: PeerClient,
}

impl TxnLog {
    /// The handles for node `node`; requests to other nodes go through `peers`.
    pub fn new(
        node: BrokerId,
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
        peers: PeerClient,
    ) -> TxnLog {
        TxnLog {
            node,
            controller,
            replicas,
            groups,
            peers,
        }
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// This node's replica of `__transaction_state` partition `p`, if it hosts one.
    pub fn partition(&self, p: i32) -> Option<Arc<Partition>> {
        self.replicas.get(TRANSACTION_STATE_TOPIC, p)
    }
}
