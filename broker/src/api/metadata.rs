//! Metadata: brokers, controller, topics with partitions, leaders and epochs; auto-creates
//! topics when `auto.create.topics.enable` and the client allow it.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::sb;
use crate::error::KafkaError;
use crate::metadata::TopicMeta;
use crate::server::Broker;

/// Handles Metadata.
pub async fn handle(
    b: &Broker,
    req: MetadataRequest,
    version: i16,
    _ctx: &super::Ctx<'_>,
) -> MetadataResponse {
    let mut image = visible_image(b);
    let mut topics = Vec::new();
    match req.topics {
        // v0 uses an empty list for "all topics"; v1+ uses null.
        None => topics.extend(
            image
                .topics
                .values()
                .map(|t| topic_entry(t, version, req.include_topic_authorized_operations)),
        ),
        Some(list) if list.is_empty() && version == 0 => topics.extend(
            image
                .topics
                .values()
                .map(|t| topic_entry(t, version, req.include_topic_authorized_operations)),
        ),
        Some(list) => {
            for t in list {
                let name = t.name.map(|n| n.0.to_string());
                let entry = match name {
                    Some(name) => {
                        if !image.topics.contains_key(&name)
                            && req.allow_auto_topic_creation
                            && b.config.auto_create_topics
                        {
                            match b.auto_create(&name).await {
                                Ok(()) => image = visible_image(b),
                                Err(e) => {
                                    topics.push(error_entry(Some(&name), Uuid::nil(), &e));
                                    continue;
                                }
                            }
                        }
                        match image.topics.get(&name) {
                            Some(topic) => {
                                topic_entry(topic, version, req.include_topic_authorized_operations)
                            }
                            None => {
                                let e = match crate::controller::validate_topic_name(&name) {
                                    Err(e) => e,
                                    Ok(()) => KafkaError::UnknownTopicOrPartition(String::new()),
                                };
                                error_entry(Some(&name), Uuid::nil(), &e)
                            }
                        }
                    }
                    None => match image.topic_by_id(t.topic_id) {
                        Some(topic) => {
                            topic_entry(topic, version, req.include_topic_authorized_operations)
                        }
                        None => error_entry(
                            None,
                            t.topic_id,
                            &KafkaError::UnknownTopicId(String::new()),
                        ),
                    },
                };
                topics.push(entry);
            }
        }
    }
    let recently_fenced = recently_fenced(b);
    // Fenced brokers (down, or shutting down) are left out, as KRaft's brokers do: clients
    // should not connect to them. DescribeCluster v2 can still list them.
    let brokers = image
        .brokers
        .values()
        .filter(|bi| !image.fenced_brokers.contains(&bi.id) || recently_fenced.contains(&bi.id))
        .map(|bi| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(bi.id.0))
                .with_host(sb(bi.host.clone()))
                .with_port(bi.port as i32)
                .with_rack(bi.rack.clone().filter(|_| version >= 1).map(sb))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id((version >= 2).then(|| sb(image.cluster_id.clone())))
        .with_controller_id(BrokerId(if version >= 1 {
            image.controller_id.0
        } else {
            -1
        }))
        .with_topics(topics)
        .with_cluster_authorized_operations(
            if req.include_cluster_authorized_operations && (8..=10).contains(&version) {
                CLUSTER_OPERATIONS
            } else {
                i32::MIN
            },
        )
}

/// With no authorizer, Kafka reports every operation a resource supports (as a bitfield of
/// AclOperation codes) when a client asks; `INT32_MIN` means "not requested".
/// Topic: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10,
/// ALTER_CONFIGS 11.
pub const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster: CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10,
/// ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
pub const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// How long Metadata keeps listing a broker after it was fenced (leading nothing).
///
/// Why: a client that learns in one response that a partition moved to a new leader *and*
/// that the old leader's broker is gone can lose the move. librdkafka decommissions the
/// gone broker's thread while the partition is still migrating off it, puts the partition
/// back to "no leader", and finds the new leader only at its next 1 s scan: a second lost
/// in every failover. Listing the fenced broker a little longer lets the client move its
/// partitions first and drop the broker on a later refresh.
pub const FENCED_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Brokers fenced in the controller's image for less than [`FENCED_GRACE`], as this node
/// has seen it (from the first Metadata request that found them fenced). A node cut off
/// from the quorum that shows itself fenced is not among them: clients must leave it.
fn recently_fenced(b: &Broker) -> std::collections::BTreeSet<crate::types::BrokerId> {
    let image = b.controller.image();
    let now = std::time::Instant::now();
    let mut seen = b.fenced_seen.lock().unwrap_or_else(|p| p.into_inner());
    seen.retain(|id, _| image.fenced_brokers.contains(id));
    image
        .fenced_brokers
        .iter()
        .filter(|id| now.saturating_duration_since(*seen.entry(**id).or_insert(now)) < FENCED_GRACE)
        .copied()
        .collect()
}

/// The image as this node may present it. A node cut off from the controllers (see
/// `Controller::is_cut_off`) knows the controller has fenced it by now, so it shows itself
/// fenced: left out of the brokers (clients drop their connection to it and ask another
/// broker, which has the current leaders) and leading nothing.
fn visible_image(b: &Broker) -> std::sync::Arc<crate::metadata::MetadataImage> {
    let image = b.controller.image();
    if !b.controller.is_cut_off() {
        return image;
    }
    let me = crate::types::BrokerId(b.config.node_id);
    let mut img = (*image).clone();
    img.fenced_brokers.insert(me);
    for p in img
        .topics
        .values_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if p.leader == me {
            p.leader = crate::types::BrokerId(-1);
        }
    }
    std::sync::Arc::new(img)
}

fn topic_entry(t: &TopicMeta, version: i16, include_ops: bool) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ids =
                |v: &[crate::types::BrokerId]| v.iter().map(|x| BrokerId(x.0)).collect::<Vec<_>>();
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_id(BrokerId(p.leader.0))
                .with_leader_epoch(if version >= 7 { p.leader_epoch.0 } else { -1 })
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_error_code(if p.leader.0 < 0 {
                    kafka_protocol::error::ResponseError::LeaderNotAvailable.code()
                } else {
                    0
                })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(sb(t.name.clone()))))
        .with_topic_id(if version >= 10 { t.id } else { Uuid::nil() })
        .with_is_internal(version >= 1 && t.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_ops && version >= 8 {
            TOPIC_OPERATIONS
        } else {
            i32::MIN
        })
}

fn error_entry(name: Option<&str>, id: Uuid, e: &KafkaError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(sb(n))))
        .with_topic_id(id)
        .with_error_code(e.code())
}
