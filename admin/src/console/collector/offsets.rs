//! One cycle's offset reads: every partition's log start, end (high watermark) and last stable
//! offset, leader by leader.

use super::*;

/// A partition's offsets as this cycle read them (`None`: not measured, with why).
#[derive(Debug, Default)]
pub(super) struct Offsets {
    pub(super) earliest: BTreeMap<TopicPartition, i64>,
    pub(super) latest: BTreeMap<TopicPartition, i64>,
    /// Last stable offsets (Latest under read_committed): where a read_committed consumer's
    /// end is. Absent when that read failed (the figures built on it are then unknown).
    pub(super) stable: BTreeMap<TopicPartition, i64>,
    /// Why a partition's offsets are missing.
    pub(super) missing: BTreeMap<TopicPartition, String>,
}

/// Log start and end offsets of every partition with a reachable leader, one leader at a
/// time so that one failure costs only that leader's partitions; a Kafka error for a batch
/// is retried topic by topic (a topic deleted meanwhile fails alone).
pub(super) async fn read_offsets(
    cluster: &Cluster,
    md: &rill_client::ClusterMetadata,
    unreachable: &BTreeMap<i32, String>,
    history: &mut History,
    warnings: &mut Vec<String>,
) -> Offsets {
    let mut out = Offsets::default();
    let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    for t in &md.topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(t.name.clone(), p.partition);
            if p.leader < 0 {
                out.missing.insert(tp, "no leader".into());
            } else if let Some(e) = unreachable.get(&p.leader) {
                out.missing
                    .insert(tp, format!("leader {} unreachable: {e}", p.leader));
            } else {
                by_leader.entry(p.leader).or_default().push(tp);
            }
        }
    }
    for (leader, tps) in by_leader {
        let batches: Vec<Vec<TopicPartition>> =
            match offsets_of(cluster, &tps, &mut out, history).await {
                Ok(()) => continue,
                Err(ClientError::Kafka { .. }) => {
                    // Retry topic by topic: only the failing topics go unmeasured.
                    let topics: BTreeSet<&str> = tps.iter().map(|tp| tp.topic.as_str()).collect();
                    topics
                        .into_iter()
                        .map(|t| tps.iter().filter(|tp| tp.topic == t).cloned().collect())
                        .collect()
                }
                Err(e) => {
                    warnings.push(format!("ListOffsets on broker {leader}: {e}"));
                    for tp in tps {
                        out.missing
                            .insert(tp, format!("ListOffsets on broker {leader}: {e}"));
                    }
                    continue;
                }
            };
        for batch in batches {
            if let Err(e) = offsets_of(cluster, &batch, &mut out, history).await {
                let topic = batch.first().map_or("", |tp| tp.topic.as_str());
                warnings.push(format!("ListOffsets for {topic}: {e}"));
                for tp in batch {
                    out.missing.insert(tp, format!("ListOffsets: {e}"));
                }
            }
        }
    }
    out
}

/// ListOffsets earliest and latest for `tps` into `out` (both or neither).
async fn offsets_of(
    cluster: &Cluster,
    tps: &[TopicPartition],
    out: &mut Offsets,
    history: &mut History,
) -> Result<(), ClientError> {
    let read = async {
        let earliest = cluster.list_offsets(tps, OffsetSpec::Earliest).await?;
        let latest = cluster.list_offsets(tps, OffsetSpec::Latest).await?;
        Ok::<_, ClientError>((earliest, latest))
    };
    match read.await {
        Ok((earliest, latest)) => {
            for (tp, o) in earliest {
                out.earliest.insert(tp, o.offset);
            }
            for (tp, o) in latest {
                out.latest.insert(tp, o.offset);
            }
            // Separate and not fatal: a failure leaves only the read_committed figures unknown.
            match cluster
                .list_offsets_isolated(tps, OffsetSpec::Latest, true)
                .await
            {
                Ok(stable) => {
                    for (tp, o) in stable {
                        out.stable.insert(tp, o.offset);
                    }
                }
                Err(e) => {
                    history.failed("ListOffsets");
                    tracing::debug!(error = %e, "last stable offsets not read");
                }
            }
            Ok(())
        }
        Err(e) => {
            history.failed("ListOffsets");
            Err(e)
        }
    }
}
