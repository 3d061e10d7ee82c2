//! Offset-reset planning, one implementation for `rill groups --reset-offsets` and the
//! console's reset form, with kafka-consumer-groups.sh's semantics: every target is clamped
//! into the partition's [log start, log end]; a time after every record means the log end;
//! `--shift-by` needs a committed offset and names the partition that has none (never 0).

use std::collections::BTreeMap;

use rill_client::{ClientError, Cluster, ListedOffset, OffsetSpec, TopicPartition};

/// Where to move a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// This offset.
    Offset(i64),
    /// The first offset whose timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The committed offset moved by this much (negative moves back).
    ShiftBy(i64),
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOffset {
    /// The partition.
    pub tp: TopicPartition,
    /// Committed now, if anything is.
    pub current: Option<i64>,
    /// What the scenario asked for, before clamping.
    pub wanted: i64,
    /// The offset to commit: `wanted` clamped into [log start, log end].
    pub target: i64,
    /// The bounds it was clamped into.
    pub log_start: i64,
    /// The log end.
    pub log_end: i64,
}

impl PlannedOffset {
    /// True when the scenario's offset lay outside the log and was moved to its bound.
    pub fn clamped(&self) -> bool {
        self.wanted != self.target
    }
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Reading offsets failed.
    #[error("fetching {what} failed: {source}")]
    Client {
        /// What was being read.
        what: &'static str,
        /// The client's error.
        source: ClientError,
    },
    /// `ShiftBy` on a partition with nothing committed.
    #[error("Cannot shift offset for partition {0} since there is no current committed offset.")]
    NoCurrentOffset(TopicPartition),
    /// The cluster answered without an offset for a partition.
    #[error("the cluster returned no offset for partition {0}")]
    NoOffset(TopicPartition),
}

/// The offsets a plan is made from.
#[derive(Debug, Default)]
pub struct Offsets {
    /// Committed offsets of the group.
    pub current: BTreeMap<TopicPartition, i64>,
    /// Log start offsets.
    pub earliest: BTreeMap<TopicPartition, i64>,
    /// Log end offsets.
    pub latest: BTreeMap<TopicPartition, i64>,
    /// For `Timestamp`: the first offset at or after the time (-1: none).
    pub by_time: BTreeMap<TopicPartition, i64>,
}

/// The plan for `partitions` from `offsets` (pure: the rules live here).
pub fn plan(
    partitions: &[TopicPartition],
    scenario: Scenario,
    offsets: &Offsets,
) -> Result<Vec<PlannedOffset>, ResetError> {
    let get = |m: &BTreeMap<TopicPartition, i64>, tp: &TopicPartition| {
        m.get(tp)
            .copied()
            .ok_or_else(|| ResetError::NoOffset(tp.clone()))
    };
    partitions
        .iter()
        .map(|tp| {
            let lo = get(&offsets.earliest, tp)?;
            let hi = get(&offsets.latest, tp)?.max(lo);
            let current = offsets.current.get(tp).copied().filter(|o| *o >= 0);
            let wanted = match scenario {
                Scenario::Earliest => lo,
                Scenario::Latest => hi,
                Scenario::Offset(n) => n,
                // No record at or after the time: the end of the log, as Kafka's tool does.
                Scenario::Timestamp(_) => Some(get(&offsets.by_time, tp)?)
                    .filter(|o| *o >= 0)
                    .unwrap_or(hi),
                Scenario::ShiftBy(n) => current
                    .ok_or_else(|| ResetError::NoCurrentOffset(tp.clone()))?
                    .saturating_add(n),
            };
            let target = wanted.clamp(lo, hi);
            debug_assert!(lo <= target && target <= hi);
            Ok(PlannedOffset {
                tp: tp.clone(),
                current,
                wanted,
                target,
                log_start: lo,
                log_end: hi,
            })
        })
        .collect()
}

/// Reads the group's committed offsets and the partitions' bounds (and, for `Timestamp`,
/// the offsets at that time) from the cluster, then plans.
pub async fn plan_from_cluster(
    cluster: &Cluster,
    group: &str,
    partitions: &[TopicPartition],
    scenario: Scenario,
) -> Result<Vec<PlannedOffset>, ResetError> {
    let client = |what| move |source| ResetError::Client { what, source };
    let offsets_of = |m: BTreeMap<TopicPartition, ListedOffset>| {
        m.into_iter()
            .map(|(tp, o)| (tp, o.offset))
            .collect::<BTreeMap<_, _>>()
    };
    let current = cluster
        .committed_offsets(group, Some(partitions))
        .await
        .map_err(client("the group's committed offsets"))?
        .into_iter()
        .map(|(tp, c)| (tp, c.offset))
        .collect();
    let earliest = offsets_of(
        cluster
            .list_offsets(partitions, OffsetSpec::Earliest)
            .await
            .map_err(client("log start offsets"))?,
    );
    let latest = offsets_of(
        cluster
            .list_offsets(partitions, OffsetSpec::Latest)
            .await
            .map_err(client("log end offsets"))?,
    );
    let by_time = match scenario {
        Scenario::Timestamp(ts) => offsets_of(
            cluster
                .list_offsets(partitions, OffsetSpec::Timestamp(ts))
                .await
                .map_err(client("offsets by time"))?,
        ),
        _ => BTreeMap::new(),
    };
    plan(
        partitions,
        scenario,
        &Offsets {
            current,
            earliest,
            latest,
            by_time,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets() -> (Vec<TopicPartition>, Offsets) {
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
        let m = |v: [i64; 3]| tps.iter().cloned().zip(v).collect::<BTreeMap<_, _>>();
        let mut current = m([5, 8, 0]);
        current.remove(&tps[2]);
        let o = Offsets {
            current,
            earliest: m([2, 0, 0]),
            latest: m([10, 9, 4]),
            by_time: m([7, -1, 1]),
        };
        (tps, o)
    }

    fn targets(r: Result<Vec<PlannedOffset>, ResetError>) -> Vec<i64> {
        r.map(|p| p.into_iter().map(|x| x.target).collect())
            .unwrap_or_default()
    }

    #[test]
    fn every_scenario_is_clamped_into_the_log() {
        let (tps, o) = offsets();
        assert_eq!(targets(plan(&tps, Scenario::Earliest, &o)), [2, 0, 0]);
        assert_eq!(targets(plan(&tps, Scenario::Latest, &o)), [10, 9, 4]);
        // Below the log start and past the end: moved to the bounds, and said so.
        let p = plan(&tps, Scenario::Offset(1), &o).unwrap_or_default();
        assert_eq!(p.iter().map(|x| x.target).collect::<Vec<_>>(), [2, 1, 1]);
        assert!(p[0].clamped() && !p[1].clamped());
        assert_eq!(targets(plan(&tps, Scenario::Offset(99), &o)), [10, 9, 4]);
        // A time after every record: the end.
        assert_eq!(targets(plan(&tps, Scenario::Timestamp(0), &o)), [7, 9, 1]);
    }

    #[test]
    fn shift_by_needs_a_commit_and_is_clamped() {
        let (tps, o) = offsets();
        assert_eq!(targets(plan(&tps[..2], Scenario::ShiftBy(3), &o)), [8, 9]);
        assert_eq!(targets(plan(&tps[..2], Scenario::ShiftBy(-7), &o)), [2, 1]);
        match plan(&tps, Scenario::ShiftBy(1), &o) {
            Err(ResetError::NoCurrentOffset(tp)) => assert_eq!(tp, tps[2]),
            other => panic!("{other:?}"),
        }
    }
}
