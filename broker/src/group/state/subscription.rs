//! The classic consumer protocol's member metadata (ConsumerProtocolSubscription), decoded.

use bytes::Bytes;

/// A decoded ConsumerProtocolSubscription: the topics, and the partitions the member says it
/// still owns (`None` before v1, which cannot say).
pub struct Subscription {
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Owned partitions by topic name.
    pub owned: Option<Vec<(String, Vec<i32>)>>,
}

/// Decodes a version-prefixed ConsumerProtocolSubscription (the classic consumer protocol's
/// member metadata).
pub fn decode_subscription(meta: &Bytes) -> Option<Subscription> {
    let mut b = meta.clone();
    if b.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    bytes::Buf::advance(&mut b, 2);
    use kafka_protocol::protocol::Decodable;
    let sub =
        kafka_protocol::messages::ConsumerProtocolSubscription::decode(&mut b, version.clamp(0, 3))
            .ok()?;
    Some(Subscription {
        topics: sub.topics.iter().map(|t| t.to_string()).collect(),
        owned: (version >= 1).then(|| {
            sub.owned_partitions
                .iter()
                .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
                .collect()
        }),
    })
}
