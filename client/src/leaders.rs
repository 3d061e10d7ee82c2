//! Leader elections (ElectLeaders, KIP-460), as methods on [`Cluster`]: what
//! `kafka-leader-election.sh` and `Admin.electLeaders` do.

use std::collections::BTreeMap;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::ElectLeadersRequest;

use super::admin::topic_name;
use super::{ClientError, Cluster, TopicPartition};

/// Which election to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionKind {
    /// Move leadership to each partition's preferred (first) replica, if it is in sync.
    Preferred,
    /// Give a leaderless partition any live replica as leader (may lose acknowledged records).
    Unclean,
}

impl ElectionKind {
    /// The wire code (`election_type`).
    pub fn code(self) -> i8 {
        match self {
            ElectionKind::Preferred => 0,
            ElectionKind::Unclean => 1,
        }
    }

    /// Kafka's name: `PREFERRED` or `UNCLEAN`.
    pub fn name(self) -> &'static str {
        match self {
            ElectionKind::Preferred => "PREFERRED",
            ElectionKind::Unclean => "UNCLEAN",
        }
    }
}

/// One partition's election result.
pub type ElectionResult = (TopicPartition, Result<(), ClientError>);

impl Cluster {
    /// Runs an election for `partitions`, or for every partition with `None` (the broker then
    /// leaves out the partitions that need no election). One result per partition, sorted;
    /// ELECTION_NOT_NEEDED comes back as an error the caller may treat as success.
    pub async fn elect_leaders(
        &self,
        kind: ElectionKind,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<ElectionResult>, ClientError> {
        let topic_partitions = partitions.map(|tps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in tps {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect()
        });
        let req = ElectLeadersRequest::default()
            .with_election_type(kind.code())
            .with_topic_partitions(topic_partitions)
            .with_timeout_ms(self.timeout_ms());
        // Any broker forwards the election to the metadata quorum; the controller named by
        // metadata may just have died, so fall back to any node.
        let resp = match self.send_to_controller(req.clone()).await {
            Err(ClientError::Io { .. } | ClientError::Timeout { .. }) => {
                self.send_to_any(req).await?
            }
            r => r?,
        };
        ClientError::check(resp.error_code, None)?;
        let mut out: Vec<ElectionResult> = resp
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partition_result.into_iter().map(move |p| {
                    let tp = TopicPartition::new(topic.clone(), p.partition_id);
                    (
                        tp,
                        ClientError::check(p.error_code, p.error_message.as_deref()),
                    )
                })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
