//! Copy progress of reassignments in flight, shared by `rill reassign --wait` and the
//! console's reassignment page: each adding replica's size (DescribeLogDirs on its broker)
//! against the leader's.

use std::collections::{BTreeMap, BTreeSet};

use rill_client::{Cluster, OngoingReassignment, TopicPartition};

use crate::cli::CliError;

/// Copy progress of one adding replica.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Bytes the adding replica holds.
    pub copied: i64,
    /// Bytes the leader holds.
    pub total: i64,
}

/// Per adding replica of each reassignment in `ongoing`: its size (DescribeLogDirs on its
/// broker) against the leader's. A broker that cannot answer counts as 0 this time.
pub async fn sizes(
    cluster: &Cluster,
    ongoing: &[OngoingReassignment],
) -> Result<Vec<(TopicPartition, i32, Sample)>, CliError> {
    let topics: BTreeSet<String> = ongoing.iter().map(|o| o.partition.topic.clone()).collect();
    let topics: Vec<String> = topics.into_iter().collect();
    let md = cluster.metadata(Some(&topics)).await?;
    let mut sizes: BTreeMap<i32, BTreeMap<TopicPartition, i64>> = BTreeMap::new();
    let mut out = Vec::new();
    for o in ongoing {
        let leader = md
            .topic(&o.partition.topic)
            .and_then(|t| {
                t.partitions
                    .iter()
                    .find(|p| p.partition == o.partition.partition)
            })
            .map_or(-1, |p| p.leader);
        for b in o.adding.iter().chain(std::iter::once(&leader)) {
            if *b >= 0 && !sizes.contains_key(b) {
                let s = cluster.replica_sizes(*b).await.unwrap_or_default();
                sizes.insert(*b, s);
            }
        }
        let total = sizes
            .get(&leader)
            .and_then(|s| s.get(&o.partition))
            .copied()
            .unwrap_or(0);
        for a in &o.adding {
            let copied = sizes
                .get(a)
                .and_then(|s| s.get(&o.partition))
                .copied()
                .unwrap_or(0);
            out.push((o.partition.clone(), *a, Sample { copied, total }));
        }
    }
    Ok(out)
}
