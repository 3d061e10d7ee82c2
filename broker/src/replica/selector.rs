//! Which replica a consumer should read from (KIP-392, Kafka's `ReplicaSelector`).
//!
//! With `replica.selector.class` set to Kafka's `RackAwareReplicaSelector`, the leader answers
//! a consumer that names its rack (Fetch v11+ `rack_id`, librdkafka's `client.rack`) with a
//! *preferred read replica* in that rack instead of data, and the consumer fetches from that
//! replica until told otherwise, so its traffic stays inside its rack. Kafka's rule: among the
//! leader and the in-sync followers that already hold the fetch offset, those in the client's
//! rack; the leader when it is one of them, otherwise the one furthest ahead (the most
//! recently caught up on a tie; here the lowest id, as Rill tracks no finer time). No replica
//! in the rack, or no rack given: the leader, i.e. no redirection.
//!
//! A follower serves such reads up to its own high watermark (the leader's as of its last
//! fetch), so a consumer never sees uncommitted data there; an offset past a follower's log
//! end is OFFSET_OUT_OF_RANGE, on which librdkafka returns to the leader, as it does when the
//! follower goes away.

pub use crate::config::{ReplicaSelector, RACK_AWARE_SELECTOR_CLASS};
use crate::types::BrokerId;

/// A follower the leader could send a consumer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The follower.
    pub id: BrokerId,
    /// Its `broker.rack`.
    pub rack: Option<String>,
    /// Its log end offset as the leader last saw it.
    pub log_end_offset: i64,
    /// Whether it is in the ISR.
    pub in_sync: bool,
}

/// The replica a consumer in `client_rack` fetching at `fetch_offset` should read from, when it
/// is not the leader (whose rack is `leader_rack`); `None` means read here.
pub fn preferred_read_replica(
    selector: ReplicaSelector,
    client_rack: &str,
    leader_rack: Option<&str>,
    followers: &[Candidate],
    fetch_offset: i64,
) -> Option<BrokerId> {
    if selector != ReplicaSelector::RackAware || client_rack.is_empty() {
        return None;
    }
    if leader_rack == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|c| {
            c.in_sync && c.rack.as_deref() == Some(client_rack) && c.log_end_offset >= fetch_offset
        })
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.id.cmp(&a.id))
        })
        .map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i32, rack: &str, leo: i64, in_sync: bool) -> Candidate {
        Candidate {
            id: BrokerId(id),
            rack: Some(rack.to_string()),
            log_end_offset: leo,
            in_sync,
        }
    }

    #[test]
    fn the_class_names_kafka_uses() {
        assert_eq!(
            ReplicaSelector::from_class(RACK_AWARE_SELECTOR_CLASS),
            Some(ReplicaSelector::RackAware)
        );
        assert_eq!(
            ReplicaSelector::from_class(""),
            Some(ReplicaSelector::Leader)
        );
        assert_eq!(ReplicaSelector::from_class("com.example.Mine"), None);
    }

    #[test]
    fn a_caught_up_in_sync_follower_in_the_clients_rack() {
        let rack_aware = ReplicaSelector::RackAware;
        let f = [c(2, "b", 100, true), c(3, "c", 100, true)];
        assert_eq!(
            preferred_read_replica(rack_aware, "b", Some("a"), &f, 90),
            Some(BrokerId(2))
        );
        // The leader's own rack, no rack, an unknown rack, or the plain selector: the leader.
        assert_eq!(
            preferred_read_replica(rack_aware, "a", Some("a"), &f, 90),
            None
        );
        assert_eq!(
            preferred_read_replica(rack_aware, "", Some("a"), &f, 90),
            None
        );
        assert_eq!(
            preferred_read_replica(rack_aware, "z", Some("a"), &f, 90),
            None
        );
        assert_eq!(
            preferred_read_replica(ReplicaSelector::Leader, "b", Some("a"), &f, 90),
            None
        );
        // Behind the fetch offset, or out of the ISR: not chosen.
        assert_eq!(
            preferred_read_replica(rack_aware, "b", Some("a"), &f, 101),
            None
        );
        let lagging = [c(2, "b", 100, false)];
        assert_eq!(
            preferred_read_replica(rack_aware, "b", Some("a"), &lagging, 90),
            None
        );
        // Two in the rack: the one furthest ahead, then the lowest id.
        let two = [
            c(4, "b", 100, true),
            c(2, "b", 120, true),
            c(3, "b", 120, true),
        ];
        assert_eq!(
            preferred_read_replica(rack_aware, "b", Some("a"), &two, 90),
            Some(BrokerId(2))
        );
    }
}
