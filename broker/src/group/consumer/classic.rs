//! Members of a consumer group that speak the classic protocol (JoinGroup, SyncGroup,
//! Heartbeat), as Kafka 4 keeps them when it converts a classic group online.

use serde::{Deserialize, Serialize};

/// What the coordinator keeps of a classic member beside its consumer-group membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicMember {
    /// Its session timeout (the classic protocol's, from JoinGroup).
    pub session_timeout_ms: i32,
    /// The protocols it offered, by name, with their metadata (hex), in its order.
    pub protocols: Vec<(String, String)>,
}
