//! Consumer-group admin operations, as methods on [`Cluster`]: list, describe (members and
//! their decoded assignments), committed offsets, offset commits for resets, deletion.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_group_describe_response;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerProtocolAssignment, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::admin::{missing, sb, topic_name, ItemResult, TopicPartition};
use super::{ClientError, Cluster};

/// The newest ConsumerProtocolAssignment version the crate decodes; newer ones only append
/// fields, so they are read as this one.
const ASSIGNMENT_MAX_VERSION: i16 = 3;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for Kafka consumers; empty for offsets-only groups).
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, ...), when the broker's ListGroups version reports it.
    pub state: Option<String>,
    /// `classic` or `consumer` (KIP-848), when the broker's ListGroups version reports it.
    pub group_type: Option<String>,
    /// The coordinator that listed it.
    pub coordinator: i32,
}

/// A group member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id assigned by the coordinator.
    pub member_id: String,
    /// Static membership id (KIP-345), if any.
    pub group_instance_id: Option<String>,
    /// The member's client id.
    pub client_id: String,
    /// The member's host as the coordinator saw it.
    pub client_host: String,
    /// Assigned partitions, decoded for `consumer` groups (empty otherwise, or before the
    /// first assignment). For a consumer group (KIP-848): what the member owns now.
    pub assignment: Vec<TopicPartition>,
    /// For a consumer group (KIP-848): what the coordinator wants the member to own; equal
    /// to `assignment` once it has reconciled. `None` for classic groups.
    pub target_assignment: Option<Vec<TopicPartition>>,
    /// For a consumer group: the member's epoch.
    pub member_epoch: Option<i32>,
    /// For a consumer group: true when the member speaks the classic protocol (a group
    /// converted online).
    pub classic_member: bool,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable` or `Dead` (also what
    /// brokers before DescribeGroups v6 answer for an unknown group).
    pub state: String,
    /// Protocol type (`consumer` for Kafka consumers).
    pub protocol_type: String,
    /// Chosen protocol, i.e. the assignor (`range`, `cooperative-sticky`, ...).
    pub protocol: String,
    /// Members (empty unless the group has active members).
    pub members: Vec<GroupMember>,
    /// The coordinator's node id.
    pub coordinator: i32,
    /// `classic`, or `consumer` for a group of the KIP-848 protocol (whose states are
    /// `Empty`, `Assigning`, `Reconciling` and `Stable`).
    pub group_type: String,
    /// For a consumer group: the group epoch and the epoch of its target assignment.
    pub epochs: Option<GroupEpochs>,
}

/// A consumer group's epochs (KIP-848).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupEpochs {
    /// Bumped by every membership or subscription change.
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
}

impl GroupDescription {
    /// True when the group has no active members (`Empty` or `Dead`): only then may its
    /// offsets be reset or the group deleted.
    pub fn is_inactive(&self) -> bool {
        matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch recorded with the commit, if any.
    pub leader_epoch: Option<i32>,
    /// The commit's metadata string.
    pub metadata: Option<String>,
}

impl Cluster {
    /// Every group on every broker (each coordinator lists only its own groups). A broker
    /// that cannot be asked fails the call: a partial list would mislead.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>, ClientError> {
        self.metadata(Some(&[])).await?;
        let nodes: Vec<i32> = self.brokers().into_iter().map(|b| b.node_id).collect();
        let mut out = Vec::new();
        for node in nodes {
            let resp = self.send_to(node, ListGroupsRequest::default()).await?;
            ClientError::check(resp.error_code, Some(&format!("ListGroups on node {node}")))?;
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: Some(g.group_state.to_string()).filter(|s| !s.is_empty()),
                group_type: Some(g.group_type.to_string()).filter(|s| !s.is_empty()),
                coordinator: node,
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// Describes `group` at its coordinator: a consumer group (KIP-848) by
    /// ConsumerGroupDescribe, any other by DescribeGroups, as Kafka's admin client does. An
    /// unknown group is either GROUP_ID_NOT_FOUND (DescribeGroups v6+) or state `Dead` with no
    /// members (older versions).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        let coordinator = self.coordinator(group).await?;
        if let Some(d) = self.describe_consumer_group(coordinator, group).await? {
            return Ok(d);
        }
        let req = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let resp = self.send_to(coordinator, req).await?;
        let g = resp
            .groups
            .into_iter()
            .find(|g| *g.group_id.0 == *group)
            .ok_or_else(|| missing("DescribeGroups", group))?;
        check_group(g.error_code, g.error_message.as_deref(), group)?;
        let consumer = &*g.protocol_type == "consumer";
        let members = g
            .members
            .into_iter()
            .map(|m| {
                let assignment = if consumer {
                    decode_assignment(&m.member_assignment).unwrap_or_else(|e| {
                        tracing::warn!(group, member = %m.member_id, error = %e, "undecodable member assignment");
                        Vec::new()
                    })
                } else {
                    Vec::new()
                };
                GroupMember {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment,
                    target_assignment: None,
                    member_epoch: None,
                    classic_member: true,
                }
            })
            .collect();
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            coordinator,
            group_type: "classic".into(),
            epochs: None,
        })
    }

    /// ConsumerGroupDescribe of one group: `None` when it is not a consumer group (or the
    /// broker does not know the API), for DescribeGroups to answer.
    async fn describe_consumer_group(
        &self,
        coordinator: i32,
        group: &str,
    ) -> Result<Option<GroupDescription>, ClientError> {
        let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)]);
        let resp = match self.send_to(coordinator, req).await {
            Ok(r) => r,
            Err(ClientError::UnsupportedVersion { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(g) = resp.groups.into_iter().find(|g| *g.group_id.0 == *group) else {
            return Ok(None);
        };
        if g.error_code == kafka_protocol::error::ResponseError::GroupIdNotFound.code() {
            return Ok(None);
        }
        check_group(g.error_code, g.error_message.as_deref(), group)?;
        let tps = |a: &consumer_group_describe_response::Assignment| -> Vec<TopicPartition> {
            let mut v: Vec<TopicPartition> = a
                .topic_partitions
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| TopicPartition::new(t.topic_name.0.as_str(), *p))
                })
                .collect();
            v.sort();
            v
        };
        let members = g
            .members
            .iter()
            .map(|m| GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: tps(&m.assignment),
                target_assignment: Some(tps(&m.target_assignment)),
                member_epoch: Some(m.member_epoch),
                classic_member: m.member_type == 0,
            })
            .collect();
        Ok(Some(GroupDescription {
            group_id: group.to_string(),
            state: g.group_state.to_string(),
            protocol_type: "consumer".into(),
            protocol: g.assignor_name.to_string(),
            members,
            coordinator,
            group_type: "consumer".into(),
            epochs: Some(GroupEpochs {
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
            }),
        }))
    }

    /// The offsets `group` has committed: for `partitions`, or for every partition when
    /// `None`. Partitions without a commit are left out.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>, ClientError> {
        let coordinator = self.coordinator(group).await?;
        let by_topic = partitions.map(group_by_topic);
        let mut conn = self.connection(coordinator).await?;
        let version = conn.version_for::<OffsetFetchRequest>()?;
        let mut out = BTreeMap::new();
        let mut add = |topic: &str, p: i32, offset: i64, epoch: i32, meta: Option<StrBytes>| {
            if offset >= 0 {
                out.insert(
                    TopicPartition::new(topic, p),
                    CommittedOffset {
                        offset,
                        leader_epoch: Some(epoch).filter(|e| *e >= 0),
                        metadata: meta.map(|m| m.to_string()),
                    },
                );
            }
        };
        if version >= 8 {
            let topics = by_topic.map(|m| {
                m.into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopics::default()
                            .with_name(topic_name(&t))
                            .with_partition_indexes(ps)
                    })
                    .collect()
            });
            let req =
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group_id(group))
                    .with_topics(topics)]);
            let resp = conn.send_version(req, version).await?;
            let g = resp
                .groups
                .into_iter()
                .find(|g| *g.group_id.0 == *group)
                .ok_or_else(|| missing("OffsetFetch", group))?;
            ClientError::check(g.error_code, Some(&format!("group '{group}'")))?;
            for t in g.topics {
                for p in t.partitions {
                    let tp = format!("{}-{}", &*t.name.0, p.partition_index);
                    ClientError::check(p.error_code, Some(&format!("partition {tp}")))?;
                    add(
                        &t.name.0,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata,
                    );
                }
            }
        } else {
            let topics = by_topic.map(|m| {
                m.into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(topic_name(&t))
                            .with_partition_indexes(ps)
                    })
                    .collect()
            });
            let req = OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(topics);
            let resp = conn.send_version(req, version).await?;
            ClientError::check(resp.error_code, Some(&format!("group '{group}'")))?;
            for t in resp.topics {
                for p in t.partitions {
                    let tp = format!("{}-{}", &*t.name.0, p.partition_index);
                    ClientError::check(p.error_code, Some(&format!("partition {tp}")))?;
                    add(
                        &t.name.0,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Commits `offsets` for `group` as an administrator does (kafka-consumer-groups.sh's
    /// resets): generation -1 and no member id, which the coordinator accepts only while the
    /// group has no active members. Any partition error fails the call.
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        let coordinator = self.coordinator(group).await?;
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, offset) in offsets {
            topics.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*offset),
            );
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(group_id(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = self.send_to(coordinator, req).await?;
        let mut answered = 0;
        for t in &resp.topics {
            for p in &t.partitions {
                answered += 1;
                let tp = format!("{}-{}", &*t.name.0, p.partition_index);
                ClientError::check(p.error_code, Some(&format!("partition {tp}")))?;
            }
        }
        if answered < offsets.len() {
            return Err(ClientError::Protocol(format!(
                "OffsetCommit answered for {answered} of {} partitions",
                offsets.len()
            )));
        }
        Ok(())
    }

    /// Deletes groups (each at its coordinator); one result per group, in request order.
    /// NON_EMPTY_GROUP for a group with members, GROUP_ID_NOT_FOUND for an unknown one.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<ItemResult>, ClientError> {
        let mut out = Vec::new();
        for group in groups {
            let result = async {
                let coordinator = self.coordinator(group).await?;
                let req = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
                let resp = self.send_to(coordinator, req).await?;
                let r = resp
                    .results
                    .iter()
                    .find(|r| *r.group_id.0 == **group)
                    .ok_or_else(|| missing("DeleteGroups", group))?;
                ClientError::check(r.error_code, Some(&format!("group '{group}'")))
            }
            .await;
            match result {
                // Transport and protocol failures fail the whole call; Kafka errors are
                // per group.
                Err(e) if !matches!(e, ClientError::Kafka { .. }) => return Err(e),
                r => out.push((group.clone(), r)),
            }
        }
        Ok(out)
    }
}

/// A group-level error code as a [`ClientError`], with the broker's message or the group id.
fn check_group(code: i16, message: Option<&str>, group: &str) -> Result<(), ClientError> {
    ClientError::check(code, Some(message.unwrap_or(&format!("group '{group}'"))))
}

/// Decodes a consumer group member's assignment (ConsumerProtocolAssignment: an i16
/// version, then the body). Empty bytes (no assignment yet) decode to no partitions.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<TopicPartition>, ClientError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Err(ClientError::Protocol(
            "member assignment is shorter than its version".into(),
        ));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(ClientError::Protocol(format!(
            "member assignment has version {version}"
        )));
    }
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.min(ASSIGNMENT_MAX_VERSION))
        .map_err(|e| ClientError::Protocol(format!("cannot decode member assignment: {e}")))?;
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic.0.to_string(), *p))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn group_id(s: &str) -> GroupId {
    GroupId(sb(s))
}

fn group_by_topic(partitions: &[TopicPartition]) -> BTreeMap<String, Vec<i32>> {
    let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        m.entry(tp.topic.clone()).or_default().push(tp.partition);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as WireTp;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::Encodable;

    fn encoded(version: i16) -> Bytes {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            WireTp::default()
                .with_topic(TopicName(StrBytes::from_static_str("b")))
                .with_partitions(vec![2, 0]),
            WireTp::default()
                .with_topic(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![1]),
        ]);
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version.min(3)).unwrap();
        buf.freeze()
    }

    #[test]
    fn assignments_decode_sorted() {
        for v in [0, 1, 3] {
            let got = decode_assignment(&encoded(v)).unwrap();
            assert_eq!(
                got,
                vec![
                    TopicPartition::new("a", 1),
                    TopicPartition::new("b", 0),
                    TopicPartition::new("b", 2)
                ]
            );
        }
    }

    #[test]
    fn newer_assignment_versions_are_read_as_the_newest_known() {
        // A v4 body that only appends fields after v3's.
        let mut bytes = BytesMut::from(&encoded(3)[..]);
        bytes[..2].copy_from_slice(&4i16.to_be_bytes());
        assert_eq!(decode_assignment(&bytes.freeze()).unwrap().len(), 3);
    }

    #[test]
    fn bad_assignments_are_errors_not_panics() {
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0xff, 0xff])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0, 0, 0, 9, 0])).is_err());
        let full = encoded(1);
        for cut in 2..full.len() - 1 {
            let _ = decode_assignment(&full.slice(..cut));
        }
    }
}
