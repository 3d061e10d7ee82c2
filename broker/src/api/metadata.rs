//! Metadata: brokers, controller, topics with partitions, leaders and epochs; auto-creates
//! topics when `auto.create.topics.enable` and the client allow it.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::sb;
use crate::context::Broker;
use crate::error::KafkaError;
use crate::metadata::acl::AclOperation;
use crate::metadata::{MetadataImage, TopicMeta};

/// Handles Metadata: auto-creates the missing topics the request names when it and
/// `auto.create.topics.enable` allow, then answers from the image (see [`answer`]).
pub async fn handle(
    b: &Broker,
    grace: &FencedGrace,
    req: MetadataRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> MetadataResponse {
    let mut failed = BTreeMap::new();
    if req.allow_auto_topic_creation && b.config.auto_create_topics {
        let image = b.controller.image();
        let missing: Vec<String> = req
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .filter(|n| !image.topics.contains_key(n))
            // Auto-creation needs CREATE on the cluster or the topic (and DESCRIBE to see it).
            .filter(|n| {
                ctx.authz.topic(AclOperation::Describe, n)
                    && (ctx.authz.cluster(AclOperation::Create)
                        || ctx.authz.topic(AclOperation::Create, n))
            })
            .collect();
        for name in missing {
            if let Err(e) = super::auto_create::auto_create(b, &name).await {
                failed.insert(name, e);
            }
        }
    }
    let image = visible_image(b);
    let fenced = grace.recently_fenced(&image, Instant::now());
    let describable = |t: &str| ctx.authz.topic(AclOperation::Describe, t);
    answer(
        &image,
        &fenced,
        &failed,
        &req,
        version,
        ctx.listener,
        &describable,
    )
}

/// The Metadata response for `req` from `image`: pure, so it is tested without a node.
/// `recently_fenced` are fenced brokers still listed ([`FencedGrace`]); `failed` are topics
/// whose auto-creation failed, answered with that error; brokers are listed at their
/// `listener` endpoints. Topics the principal may not describe are left out of "all
/// topics" and answered TOPIC_AUTHORIZATION_FAILED when named, existing or not (Kafka does
/// not reveal which exist).
pub fn answer(
    image: &MetadataImage,
    recently_fenced: &BTreeSet<crate::types::BrokerId>,
    failed: &BTreeMap<String, KafkaError>,
    req: &MetadataRequest,
    version: i16,
    listener: &str,
    describable: &dyn Fn(&str) -> bool,
) -> MetadataResponse {
    let ops = req.include_topic_authorized_operations;
    let mut topics = Vec::new();
    let denied = |name: Option<&str>, id: Uuid| {
        error_entry(
            name,
            id,
            &KafkaError::TopicAuthorizationFailed(String::new()),
        )
    };
    let all = || {
        image
            .topics
            .values()
            .filter(|t| describable(&t.name))
            .map(|t| topic_entry(t, version, ops))
    };
    match &req.topics {
        // v0 uses an empty list for "all topics"; v1+ uses null.
        None => topics.extend(all()),
        Some(list) if list.is_empty() && version == 0 => topics.extend(all()),
        Some(list) => {
            for t in list {
                let entry = match t.name.as_ref().map(|n| n.0.to_string()) {
                    Some(name) if !describable(&name) => denied(Some(&name), Uuid::nil()),
                    Some(name) => match (image.topics.get(&name), failed.get(&name)) {
                        (Some(topic), _) => topic_entry(topic, version, ops),
                        (None, Some(e)) => error_entry(Some(&name), Uuid::nil(), e),
                        (None, None) => {
                            let e = match crate::controller::validate_topic_name(&name) {
                                Err(e) => e,
                                Ok(()) => KafkaError::UnknownTopicOrPartition(String::new()),
                            };
                            error_entry(Some(&name), Uuid::nil(), &e)
                        }
                    },
                    None => match image.topic_by_id(t.topic_id) {
                        Some(topic) if !describable(&topic.name) => denied(None, t.topic_id),
                        Some(topic) => topic_entry(topic, version, ops),
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
    // Fenced brokers (down, or shutting down) are left out, as KRaft's brokers do: clients
    // should not connect to them. DescribeCluster v2 can still list them.
    let brokers = image
        .brokers
        .values()
        .filter(|bi| !image.fenced_brokers.contains(&bi.id) || recently_fenced.contains(&bi.id))
        // A client sees each broker at the listener it came in on (Kafka leaves brokers
        // without that listener out).
        .filter_map(|bi| {
            let (host, port) = bi.endpoint_for(listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(bi.id.0))
                    .with_host(sb(host))
                    .with_port(port as i32)
                    .with_rack(bi.rack.clone().filter(|_| version >= 1).map(sb)),
            )
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

/// When this node's Metadata first found each broker fenced: the Metadata handler's own
/// state, kept by the dispatcher.
#[derive(Debug, Default)]
pub struct FencedGrace {
    seen: Mutex<HashMap<crate::types::BrokerId, Instant>>,
}

impl FencedGrace {
    /// Brokers fenced in `image` for less than [`FENCED_GRACE`] as of `now`, as this node has
    /// seen it (from the first Metadata request that found them fenced). A node cut off from
    /// the quorum that shows itself fenced is not among them: clients must leave it.
    pub fn recently_fenced(
        &self,
        image: &MetadataImage,
        now: Instant,
    ) -> BTreeSet<crate::types::BrokerId> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|id, _| image.fenced_brokers.contains(id));
        image
            .fenced_brokers
            .iter()
            .filter(|id| {
                now.saturating_duration_since(*seen.entry(**id).or_insert(now)) < FENCED_GRACE
            })
            .copied()
            .collect()
    }
}

/// The image as this node may present it. A node cut off from the controllers (see
/// `Controller::is_cut_off`) knows the controller has fenced it by now, so it shows itself
/// fenced: left out of the brokers (clients drop their connection to it and ask another
/// broker, which has the current leaders) and leading nothing.
pub(super) fn visible_image(b: &Broker) -> std::sync::Arc<crate::metadata::MetadataImage> {
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
        .flat_map(|t| Arc::make_mut(t).partitions.iter_mut())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::fixtures::{self, part};
    use crate::types::BrokerId as Id;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;

    fn named(names: &[&str]) -> MetadataRequest {
        MetadataRequest::default().with_topics(Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(sb(*n)))))
                .collect(),
        ))
    }

    #[test]
    fn answers_from_the_image_without_a_node() {
        let mut img = fixtures::image(3, &[3], vec![part(&[1, 2, 3], &[1, 2], 1)]);
        img.cluster_id = "c".into();
        let failed = BTreeMap::from([(
            "denied".to_string(),
            KafkaError::PolicyViolation("no".into()),
        )]);
        let r = answer(
            &img,
            &BTreeSet::new(),
            &failed,
            &named(&["t", "nope", "denied", "b d"]),
            12,
            "PLAINTEXT",
            &|_| true,
        );
        assert_eq!(r.cluster_id.as_deref(), Some("c"));
        let ids: Vec<i32> = r.brokers.iter().map(|b| b.node_id.0).collect();
        assert_eq!(ids, vec![1, 2], "the fenced broker is left out");
        let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, vec![0, 3, 44, 17]);
        assert_eq!(r.topics[0].partitions[0].leader_id.0, 1);
        assert_eq!(r.topics[0].partitions[0].isr_nodes.len(), 2);
        // A just-fenced broker stays listed during the grace.
        let r = answer(
            &img,
            &BTreeSet::from([Id(3)]),
            &failed,
            &MetadataRequest::default().with_topics(None),
            12,
            "PLAINTEXT",
            &|_| true,
        );
        assert_eq!(r.brokers.len(), 3);
        assert_eq!(r.topics.len(), 1, "null topics: all of them");
    }

    #[test]
    fn a_fenced_broker_is_listed_for_the_grace_then_dropped() {
        let img = fixtures::image(3, &[2], Vec::new());
        let g = FencedGrace::default();
        let t0 = Instant::now();
        assert!(g.recently_fenced(&img, t0).contains(&Id(2)));
        assert!(g
            .recently_fenced(&img, t0 + FENCED_GRACE / 2)
            .contains(&Id(2)));
        assert!(g.recently_fenced(&img, t0 + FENCED_GRACE).is_empty());
        let unfenced = fixtures::image(3, &[], Vec::new());
        assert!(g.recently_fenced(&unfenced, t0).is_empty());
        assert!(
            g.recently_fenced(&img, t0 + FENCED_GRACE * 2)
                .contains(&Id(2)),
            "fenced again: a new grace"
        );
    }
}
