//! Which partitions' offsets a cycle writes to the store: those that changed, not all of them.
//!
//! The store's every-cycle partition offsets only warm the time-lag tables after a restart
//! ([`super::super::lag::OffsetTable`]), and those tables keep only where the end offset
//! moved: the first and last point of every flat run. Writing every partition every cycle
//! made a cycle's store work, and the rows a restart reads back, grow with the cluster (at
//! 100,000 partitions and a 10 s interval, 36 million rows an hour), however few partitions
//! took writes. So a cycle writes a partition's point when its offsets changed, the point
//! before that change when it was not written (the end of a flat run, which interpolation
//! needs), and, for a partition that stays flat, one point every [`FLAT_REWRITE_CYCLES`] so
//! that a restart knows it was still flat then.

use std::collections::HashMap;

use rill_client::TopicPartition;

use super::super::snapshot::Snapshot;
use super::super::store::OffsetSample;

/// A flat partition's point is written again after this many cycles without one.
pub const FLAT_REWRITE_CYCLES: u64 = 30;

#[derive(Debug, Clone, Copy)]
struct Last {
    ts_ms: i64,
    earliest: i64,
    latest: i64,
    /// The cycle whose point was last written.
    written_cycle: u64,
    /// Whether this point (the newest) was written.
    written: bool,
}

/// Remembers each partition's last offsets (one entry per partition of the latest snapshot:
/// bounded by the cluster, as the snapshot is).
#[derive(Debug, Default)]
pub struct OffsetSampler {
    last: HashMap<TopicPartition, Last>,
    cycle: u64,
}

impl OffsetSampler {
    /// The samples of `snap` to write (module docs: which and why). Partitions whose end
    /// offset this cycle could not read are skipped and keep their memory.
    pub fn samples(&mut self, snap: &Snapshot) -> Vec<OffsetSample> {
        self.cycle += 1;
        let cycle = self.cycle;
        let ts = snap.taken_at_ms;
        let mut out = Vec::new();
        let mut seen: HashMap<TopicPartition, Last> = HashMap::with_capacity(self.last.len());
        for t in &snap.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.as_str(), p.partition);
                let prev = self.last.remove(&tp);
                if p.latest < 0 {
                    if let Some(prev) = prev {
                        seen.insert(tp, prev);
                    }
                    continue;
                }
                let write = match prev {
                    None => true,
                    Some(l) if (l.earliest, l.latest) != (p.earliest, p.latest) => {
                        if !l.written {
                            out.push(OffsetSample {
                                tp: tp.clone(),
                                ts_ms: l.ts_ms,
                                earliest: l.earliest,
                                latest: l.latest,
                            });
                        }
                        true
                    }
                    Some(l) => cycle - l.written_cycle >= FLAT_REWRITE_CYCLES,
                };
                if write {
                    out.push(OffsetSample {
                        tp: tp.clone(),
                        ts_ms: ts,
                        earliest: p.earliest,
                        latest: p.latest,
                    });
                }
                let written_cycle = match (write, prev) {
                    (true, _) | (false, None) => cycle,
                    (false, Some(l)) => l.written_cycle,
                };
                seen.insert(
                    tp,
                    Last {
                        ts_ms: ts,
                        earliest: p.earliest,
                        latest: p.latest,
                        written_cycle,
                        written: write,
                    },
                );
            }
        }
        // Partitions no longer in the snapshot (deleted topics) are forgotten.
        self.last = seen;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::lag::OffsetTable;
    use crate::console::snapshot::{PartitionInfo, TopicInfo};

    fn snap(ts: i64, offsets: &[(i64, i64)]) -> Snapshot {
        Snapshot {
            taken_at_ms: ts,
            topics: vec![TopicInfo {
                name: "t".into(),
                internal: false,
                partitions: offsets
                    .iter()
                    .enumerate()
                    .map(|(i, (earliest, latest))| PartitionInfo {
                        partition: i as i32,
                        leader: 1,
                        replicas: vec![1],
                        isr: vec![1],
                        earliest: *earliest,
                        latest: *latest,
                        size: None,
                    })
                    .collect(),
                min_insync_replicas: None,
                cleanup_policy: None,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn only_changes_and_the_ends_of_flat_runs_are_written() {
        let mut s = OffsetSampler::default();
        let pts = |v: Vec<OffsetSample>| -> Vec<(i32, i64, i64)> {
            v.into_iter()
                .map(|o| (o.tp.partition, o.ts_ms, o.latest))
                .collect()
        };
        // Cycle 1: everything is new.
        assert_eq!(
            pts(s.samples(&snap(1_000, &[(0, 5), (0, 7)]))),
            vec![(0, 1_000, 5), (1, 1_000, 7)]
        );
        // Cycles 2 and 3: partition 0 flat, partition 1 moves.
        assert_eq!(
            pts(s.samples(&snap(2_000, &[(0, 5), (0, 9)]))),
            vec![(1, 2_000, 9)]
        );
        assert_eq!(
            pts(s.samples(&snap(3_000, &[(0, 5), (0, 12)]))),
            vec![(1, 3_000, 12)]
        );
        // Cycle 4: partition 0 moves: the end of its flat run (cycle 3) is written first.
        assert_eq!(
            pts(s.samples(&snap(4_000, &[(0, 6), (0, 12)]))),
            vec![(0, 3_000, 5), (0, 4_000, 6)]
        );
        // A change of the log start alone is a change too; partition 1 stays flat.
        assert_eq!(
            pts(s.samples(&snap(5_000, &[(2, 6), (0, 12)]))),
            vec![(0, 5_000, 6)]
        );
    }

    #[test]
    fn a_flat_partition_is_rewritten_every_so_often_and_unknown_offsets_are_skipped() {
        let mut s = OffsetSampler::default();
        assert_eq!(s.samples(&snap(0, &[(0, 5)])).len(), 1);
        let mut written_at = Vec::new();
        for c in 1..=(2 * FLAT_REWRITE_CYCLES as i64) {
            // An unreadable end offset in the middle: skipped, the memory kept.
            let offsets = if c == 7 { [(-1, -1)] } else { [(0, 5)] };
            for o in s.samples(&snap(c * 1_000, &offsets)) {
                written_at.push(o.ts_ms / 1_000);
            }
        }
        assert_eq!(
            written_at,
            vec![FLAT_REWRITE_CYCLES as i64, 2 * FLAT_REWRITE_CYCLES as i64]
        );
    }

    /// The sparse samples rebuild the same time-lag table as every cycle's point would.
    #[test]
    fn sparse_samples_give_the_same_time_lag_table() {
        let ends = [5, 5, 5, 9, 9, 9, 9, 14, 20, 20, 20, 20, 20, 21];
        let mut s = OffsetSampler::default();
        let mut dense = OffsetTable::default();
        let mut sparse = OffsetTable::default();
        let mut rows = Vec::new();
        for (i, e) in ends.iter().enumerate() {
            let ts = (i as i64 + 1) * 10_000;
            dense.add(ts, *e);
            rows.extend(s.samples(&snap(ts, &[(0, *e)])));
        }
        rows.sort_by_key(|o| o.ts_ms);
        for o in &rows {
            sparse.add(o.ts_ms, o.latest);
        }
        let now = 200_000;
        for committed in 0..=21 {
            assert_eq!(
                dense.lag_seconds(committed, now),
                sparse.lag_seconds(committed, now),
                "committed {committed}"
            );
        }
        assert!(rows.len() < ends.len(), "{} rows", rows.len());
    }
}
