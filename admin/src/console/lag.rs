//! Lag in time and group status.
//!
//! Time lag follows kafka-lag-exporter: every cycle adds (time, end offset) to a small
//! table per partition; the time lag of a committed offset C is "now − the time at which
//! the end offset was C", found by linear interpolation between the two table points around
//! C, or by extrapolating from the oldest and newest points when C is older than the table.
//! Flat runs keep only their first and last point, and points that go backwards (a
//! truncation, a recreated topic) reset the table.
//!
//! Status follows Burrow's ideas with operator thresholds instead of Burrow's fixed rules
//! (its users asked for them, Burrow#223): over a window of recent cycles a partition with
//! lag whose committed offset never moved is *stalled* when the group has members and
//! *stopped* when it has none; lag above a threshold (offsets or seconds), or lag growing
//! through the whole window, is *lagging*; anything else is *ok*. The group takes its worst
//! partition's status.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::snapshot::GroupStatus;

/// Points kept per partition (kafka-lag-exporter's default is 60).
pub const TABLE_POINTS: usize = 60;
/// Cycles kept per group partition for the status window.
pub const STATUS_WINDOW: usize = 10;

/// (time in ms, end offset) points of one partition, oldest first.
#[derive(Debug, Clone, Default)]
pub struct OffsetTable {
    points: VecDeque<(i64, i64)>,
}

impl OffsetTable {
    /// Adds a point. Flat runs keep their first and last point; an offset below the newest
    /// point resets the table (the partition was truncated or recreated).
    pub fn add(&mut self, ts_ms: i64, offset: i64) {
        if offset < 0 {
            return;
        }
        if let Some(&(last_ts, last)) = self.points.back() {
            if ts_ms <= last_ts {
                return;
            }
            if offset < last {
                self.points.clear();
            } else if offset == last {
                let len = self.points.len();
                if len >= 2 && self.points[len - 2].1 == offset {
                    self.points.pop_back();
                }
            }
        }
        self.points.push_back((ts_ms, offset));
        while self.points.len() > TABLE_POINTS {
            self.points.pop_front();
        }
    }

    /// Number of points.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Time lag in seconds of committed offset `committed` at `now_ms`: 0 when caught up
    /// with the newest point, `None` with fewer than two points (nothing to interpolate).
    pub fn lag_seconds(&self, committed: i64, now_ms: i64) -> Option<f64> {
        let &(_, newest) = self.points.back()?;
        if committed >= newest {
            return Some(0.0);
        }
        if self.points.len() < 2 {
            return None;
        }
        let predicted = self.predict_time(committed)?;
        Some(((now_ms as f64 - predicted) / 1000.0).max(0.0))
    }

    /// The time (ms) at which the end offset was `offset`.
    fn predict_time(&self, offset: i64) -> Option<f64> {
        let first = *self.points.front()?;
        let last = *self.points.back()?;
        // Inside the table: the two points around it.
        let mut prev = first;
        for &p in self.points.iter().skip(1) {
            if offset >= prev.1 && offset <= p.1 {
                return Some(interpolate(prev, p, offset));
            }
            prev = p;
        }
        // Older than the table: extrapolate along the whole table's slope.
        if first.1 == last.1 {
            return Some(first.0 as f64);
        }
        Some(interpolate(first, last, offset))
    }
}

fn interpolate((t0, o0): (i64, i64), (t1, o1): (i64, i64), offset: i64) -> f64 {
    if o1 == o0 {
        // A flat run: the end offset has been `offset` since the run began.
        return t0 as f64;
    }
    let frac = (offset - o0) as f64 / (o1 - o0) as f64;
    t0 as f64 + frac * (t1 - t0) as f64
}

/// Operator thresholds for a group's status (or the defaults for every group).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Thresholds {
    /// Lag in offsets above which a partition is lagging.
    pub max_lag: i64,
    /// Time lag in seconds above which a partition is lagging.
    pub max_lag_seconds: f64,
    /// Seconds without a commit moving, while there is lag, before stalled/stopped.
    pub stall_seconds: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_lag: 1000,
            max_lag_seconds: 60.0,
            stall_seconds: 120,
        }
    }
}

/// One cycle's view of a group partition, for the status window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagPoint {
    /// Cycle time, ms.
    pub ts_ms: i64,
    /// Committed offset (-1 for none).
    pub committed: i64,
    /// Lag (-1 for none).
    pub lag: i64,
}

/// The status of one partition from its recent window (oldest first) and the latest time
/// lag; the reason is for people.
pub fn partition_status(
    window: &VecDeque<LagPoint>,
    lag_seconds: Option<f64>,
    has_members: bool,
    t: &Thresholds,
) -> (GroupStatus, String) {
    let Some(last) = window.back() else {
        return (GroupStatus::Ok, "no data yet".into());
    };
    if last.committed < 0 || last.lag <= 0 {
        return (GroupStatus::Ok, "caught up".into());
    }
    // Since when has the committed offset been what it is now?
    let unchanged_since = window
        .iter()
        .rev()
        .take_while(|p| p.committed == last.committed)
        .last()
        .map_or(last.ts_ms, |p| p.ts_ms);
    let still_for = (last.ts_ms - unchanged_since) / 1000;
    if still_for >= t.stall_seconds {
        return if has_members {
            (
                GroupStatus::Stalled,
                format!(
                    "committed offset unchanged for {still_for} s with lag {}",
                    last.lag
                ),
            )
        } else {
            (
                GroupStatus::Stopped,
                format!(
                    "no members and committed offset unchanged for {still_for} s with lag {}",
                    last.lag
                ),
            )
        };
    }
    if last.lag > t.max_lag {
        return (
            GroupStatus::Lagging,
            format!("lag {} above {}", last.lag, t.max_lag),
        );
    }
    if let Some(s) = lag_seconds.filter(|s| *s > t.max_lag_seconds) {
        return (
            GroupStatus::Lagging,
            format!("time lag {s:.0} s above {} s", t.max_lag_seconds),
        );
    }
    let growing = window.len() >= STATUS_WINDOW
        && window
            .iter()
            .zip(window.iter().skip(1))
            .all(|(a, b)| b.lag > a.lag && a.lag >= 0);
    if growing {
        return (
            GroupStatus::Lagging,
            format!("lag grew in each of the last {} cycles", window.len()),
        );
    }
    (GroupStatus::Ok, "consuming".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_points_and_extrapolates_before_them() {
        let mut t = OffsetTable::default();
        t.add(10_000, 100);
        t.add(20_000, 200);
        t.add(30_000, 300);
        // Offset 150 was the end at t=15 s; at t=30 s that is 15 s ago.
        assert_eq!(t.lag_seconds(150, 30_000), Some(15.0));
        assert_eq!(t.lag_seconds(300, 30_000), Some(0.0));
        // Offset 50 is before the table: slope 10 offsets/s gives t=5 s.
        assert_eq!(t.lag_seconds(50, 30_000), Some(25.0));
    }

    #[test]
    fn flat_runs_are_compressed_and_regressions_reset() {
        let mut t = OffsetTable::default();
        t.add(1_000, 10);
        t.add(2_000, 10);
        t.add(3_000, 10);
        assert_eq!(t.len(), 2);
        t.add(4_000, 5);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lag_seconds(1, 4_000), None, "one point is not enough");
    }

    #[test]
    fn statuses_follow_the_window_and_thresholds() {
        let th = Thresholds {
            max_lag: 100,
            max_lag_seconds: 30.0,
            stall_seconds: 20,
        };
        let w = |pts: &[(i64, i64, i64)]| -> VecDeque<LagPoint> {
            pts.iter()
                .map(|&(ts_ms, committed, lag)| LagPoint {
                    ts_ms,
                    committed,
                    lag,
                })
                .collect()
        };
        let caught_up = w(&[(0, 5, 0)]);
        assert_eq!(
            partition_status(&caught_up, None, true, &th).0,
            GroupStatus::Ok
        );
        let still = w(&[(0, 5, 10), (10_000, 5, 20), (30_000, 5, 30)]);
        assert_eq!(
            partition_status(&still, None, true, &th).0,
            GroupStatus::Stalled
        );
        assert_eq!(
            partition_status(&still, None, false, &th).0,
            GroupStatus::Stopped
        );
        let big = w(&[(0, 5, 10), (10_000, 50, 500)]);
        assert_eq!(
            partition_status(&big, None, true, &th).0,
            GroupStatus::Lagging
        );
        let slow = w(&[(0, 5, 10), (10_000, 6, 10)]);
        assert_eq!(
            partition_status(&slow, Some(45.0), true, &th).0,
            GroupStatus::Lagging
        );
        assert_eq!(
            partition_status(&slow, Some(5.0), true, &th).0,
            GroupStatus::Ok
        );
        let none = w(&[(0, -1, -1)]);
        assert_eq!(partition_status(&none, None, false, &th).0, GroupStatus::Ok);
    }
}
