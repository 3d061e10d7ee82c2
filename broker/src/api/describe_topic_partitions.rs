//! DescribeTopicPartitions (KIP-966, v0): topics with their partitions, paged by partition
//! count, which the Java admin client (3.7+) uses for `describeTopics` when a broker offers it.
//!
//! Kafka's rules (`DescribeTopicPartitionsRequestHandler`, `KRaftMetadataCache`): topics go in
//! name order, from the cursor's topic (at the cursor's partition) on; an answer holds at most
//! `min(ResponsePartitionLimit, max.request.partition.size.limit)` partitions and, when it
//! stops early, a `NextCursor` naming the first topic and partition it left out. An empty topic
//! list means every topic the principal may describe (others silently left out); a named topic
//! it may not describe comes back TOPIC_AUTHORIZATION_FAILED (after the page, whether or not
//! it exists), an unknown one UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
//! illegal name). A cursor whose topic is not among the named ones is INVALID_REQUEST for
//! every named topic.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use uuid::Uuid;

use super::sb;
use crate::context::Broker;
use crate::metadata::acl::AclOperation;
use crate::metadata::{MetadataImage, TopicMeta};

/// Most partitions one answer holds, whatever the request asks (Kafka's
/// `max.request.partition.size.limit` default).
pub const MAX_REQUEST_PARTITION_SIZE_LIMIT: i32 = 2000;

/// Handles DescribeTopicPartitions.
pub async fn handle(
    b: &Broker,
    req: DescribeTopicPartitionsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeTopicPartitionsResponse {
    let image = super::metadata::visible_image(b);
    let describable = |t: &str| ctx.authz.topic(AclOperation::Describe, t);
    answer(&image, &req, &describable)
}

/// The answer to `req` from `image`: pure, so it is tested without a node.
pub fn answer(
    image: &MetadataImage,
    req: &DescribeTopicPartitionsRequest,
    describable: &dyn Fn(&str) -> bool,
) -> DescribeTopicPartitionsResponse {
    let fetch_all = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.as_str(), c.partition_index.max(0)));
    let from = cursor.map_or("", |(t, _)| t);
    let names: BTreeSet<&str> = if fetch_all {
        image
            .topics
            .keys()
            .map(String::as_str)
            .filter(|n| *n >= from)
            .collect()
    } else {
        let named: BTreeSet<&str> = req
            .topics
            .iter()
            .map(|t| t.name.0.as_str())
            .filter(|n| *n >= from)
            .collect();
        if cursor.is_some_and(|(t, _)| !named.contains(t)) {
            return every_named(req, ResponseError::InvalidRequest);
        }
        named
    };
    let mut topics = Vec::new();
    let mut denied = Vec::new();
    let mut next_cursor = None;
    let mut remaining = MAX_REQUEST_PARTITION_SIZE_LIMIT.min(req.response_partition_limit);
    for name in names {
        if !describable(name) {
            if !fetch_all {
                denied.push(error_topic(name, ResponseError::TopicAuthorizationFailed));
            }
            continue;
        }
        if next_cursor.is_some() || remaining < 0 {
            continue;
        }
        if remaining == 0 {
            // Every partition of the topics before fits: the next page starts at this one.
            next_cursor = Some(cursor_at(name, 0));
            continue;
        }
        let Some(topic) = image.topics.get(name) else {
            if !fetch_all {
                let code = match crate::controller::validate_topic_name(name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                topics.push(error_topic(name, code));
            }
            continue;
        };
        let start = match cursor {
            Some((t, p)) if t == name => p,
            _ => 0,
        };
        let (entry, next) = topic_page(image, topic, start, remaining);
        remaining -= entry.partitions.len() as i32;
        topics.push(entry);
        if let Some(p) = next {
            next_cursor = Some(cursor_at(name, p));
        }
    }
    topics.extend(denied);
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

/// One topic's partitions from `start`, at most `max` of them, and the first partition left
/// out when there are more.
fn topic_page(
    image: &MetadataImage,
    t: &TopicMeta,
    start: i32,
    max: i32,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    debug_assert!(
        start >= 0 && max > 0,
        "a page starts somewhere and holds something"
    );
    let count = t.partitions.len() as i32;
    let upper = count.min(start.saturating_add(max));
    let ids = |v: &[crate::types::BrokerId]| v.iter().map(|x| BrokerId(x.0)).collect::<Vec<_>>();
    let partitions = (start..upper)
        .filter_map(|i| t.partitions.get(i as usize).map(|p| (i, p)))
        .map(|(i, p)| {
            let offline: Vec<BrokerId> = p
                .replicas
                .iter()
                .filter(|r| !image.brokers.contains_key(r) || image.fenced_brokers.contains(r))
                .map(|r| BrokerId(r.0))
                .collect();
            let leader = if p.leader.0 >= 0 && !image.fenced_brokers.contains(&p.leader) {
                p.leader.0
            } else {
                -1
            };
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(p.leader_epoch.0)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                // No eligible leader replicas (KIP-966's ELR) in Rill: empty, as Kafka without it.
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(offline)
        })
        .collect();
    let entry = DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(sb(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(t.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(super::metadata::TOPIC_OPERATIONS);
    (entry, (upper < count).then_some(upper))
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(sb(topic)))
        .with_partition_index(partition)
}

fn error_topic(name: &str, e: ResponseError) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(e.code())
        .with_name(Some(TopicName(sb(name))))
        .with_topic_id(Uuid::nil())
}

/// Kafka's error answer: every named topic with `e`.
fn every_named(
    req: &DescribeTopicPartitionsRequest,
    e: ResponseError,
) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| error_topic(t.name.0.as_str(), e))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::fixtures::{self, part};
    use kafka_protocol::messages::describe_topic_partitions_request::{
        Cursor as ReqCursor, TopicRequest,
    };

    fn image() -> MetadataImage {
        let mut img = fixtures::image(3, &[], Vec::new());
        img.topics.clear();
        let mut add = |name: &str, partitions: Vec<crate::metadata::PartitionMeta>| {
            img.topics.insert(
                name.to_string(),
                std::sync::Arc::new(TopicMeta {
                    name: name.to_string(),
                    id: Uuid::from_u128(name.bytes().fold(7, |h, b| h * 31 + u128::from(b))),
                    partitions,
                    configs: Default::default(),
                }),
            );
        };
        add("alpha", (0..3).map(|_| part(&[1, 2], &[1, 2], 1)).collect());
        add("beta", vec![part(&[2, 3], &[2], 2)]);
        add("gamma", (0..4).map(|_| part(&[3, 1], &[3, 1], 3)).collect());
        img
    }

    fn req(
        topics: &[&str],
        limit: i32,
        cursor: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| TopicRequest::default().with_name(TopicName(sb(*t))))
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(t, p)| {
                ReqCursor::default()
                    .with_topic_name(TopicName(sb(t)))
                    .with_partition_index(p)
            }))
    }

    /// A topic of an answer: name, error code, partition indices.
    type TopicSummary = (String, i16, Vec<i32>);

    /// The topics of an answer, and its cursor.
    fn summary(r: &DescribeTopicPartitionsResponse) -> (Vec<TopicSummary>, Option<(String, i32)>) {
        (
            r.topics
                .iter()
                .map(|t| {
                    (
                        t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                        t.error_code,
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                })
                .collect(),
            r.next_cursor
                .as_ref()
                .map(|c| (c.topic_name.0.to_string(), c.partition_index)),
        )
    }

    fn s(t: &str, e: i16, p: &[i32]) -> TopicSummary {
        (t.to_string(), e, p.to_vec())
    }

    #[test]
    fn pages_walk_every_partition_once_in_name_order() {
        let img = image();
        let all = |_: &str| true;
        // 8 partitions, pages of 3: alpha 0-2 | beta 0, gamma 0-1 | gamma 2-3.
        let r = answer(&img, &req(&[], 3, None), &all);
        assert_eq!(
            summary(&r),
            (vec![s("alpha", 0, &[0, 1, 2])], Some(("beta".into(), 0)))
        );
        let r = answer(&img, &req(&[], 3, Some(("beta", 0))), &all);
        assert_eq!(
            summary(&r),
            (
                vec![s("beta", 0, &[0]), s("gamma", 0, &[0, 1])],
                Some(("gamma".into(), 2))
            )
        );
        let r = answer(&img, &req(&[], 3, Some(("gamma", 2))), &all);
        assert_eq!(summary(&r), (vec![s("gamma", 0, &[2, 3])], None));
        // The server's cap applies whatever the request asks.
        let r = answer(&img, &req(&[], i32::MAX, None), &all);
        assert_eq!(r.topics.len(), 3);
        assert!(r.next_cursor.is_none());
        // A limit of 0 or less returns nothing (0: a cursor at the first topic).
        assert_eq!(
            summary(&answer(&img, &req(&[], 0, None), &all)),
            (vec![], Some(("alpha".into(), 0)))
        );
        assert_eq!(
            summary(&answer(&img, &req(&[], -5, None), &all)),
            (vec![], None)
        );
    }

    #[test]
    fn partitions_carry_leaders_replicas_and_offline_ones() {
        let mut img = image();
        img.fenced_brokers.insert(crate::types::BrokerId(3));
        let r = answer(&img, &req(&["beta"], 10, None), &|_| true);
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.leader_id, BrokerId(2));
        assert_eq!(p.replica_nodes, vec![BrokerId(2), BrokerId(3)]);
        assert_eq!(p.isr_nodes, vec![BrokerId(2)]);
        assert_eq!(p.offline_replicas, vec![BrokerId(3)]);
        assert_eq!(r.topics[0].topic_id, img.topics["beta"].id);
        let r = answer(&img, &req(&["gamma"], 10, None), &|_| true);
        assert!(r.topics[0]
            .partitions
            .iter()
            .all(|p| p.leader_id == BrokerId(-1)));
    }

    #[test]
    fn named_topics_unknown_denied_and_a_foreign_cursor() {
        let img = image();
        let no_beta = |t: &str| t != "beta";
        let r = answer(
            &img,
            &req(&["gamma", "nope", "beta", "bad/name"], 10, None),
            &no_beta,
        );
        assert_eq!(
            summary(&r).0,
            vec![
                s("bad/name", 17, &[]),
                s("gamma", 0, &[0, 1, 2, 3]),
                s("nope", 3, &[]),
                s("beta", 29, &[]),
            ]
        );
        // Listing everything leaves the denied topic out without a word.
        let r = answer(&img, &req(&[], 10, None), &no_beta);
        assert_eq!(
            r.topics
                .iter()
                .map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect::<Vec<_>>(),
            vec![Some("alpha".into()), Some("gamma".into())]
        );
        // The cursor's topic must be among the named ones.
        let r = answer(
            &img,
            &req(&["alpha", "gamma"], 10, Some(("beta", 0))),
            &|_| true,
        );
        assert_eq!(
            summary(&r).0,
            vec![s("alpha", 42, &[]), s("gamma", 42, &[])]
        );
    }
}
