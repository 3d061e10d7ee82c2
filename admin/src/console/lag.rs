//! Time lag, group status and the catch-up forecast, from the collector's history.
//!
//! **Time lag** of a committed offset C is "now − the time the record at C was written".
//! Every cycle adds (time, end offset) to a small table per partition; where the table
//! covers C (its oldest end offset ≤ C), the time is interpolated between the two points
//! around C + 1 (the end offset passed C + 1 when the record at C was appended). Older
//! offsets are never extrapolated (successive estimates jumped by minutes): the collector
//! reads the record at C instead and uses its timestamp ([`TimeLagMethod::RecordTimestamp`]).
//! Flat runs keep only their first and last point, and points that go backwards (a
//! truncation, a recreated topic) reset the table.
//!
//! **Status** follows Burrow's rules, evaluated over a window of *time* at least as long as
//! the longest threshold (never a count of samples, which made the default stall threshold
//! unreachable), with operator thresholds (Burrow#223):
//! - *errored*: this cycle could not measure the partition (no data);
//! - *ok*: no lag;
//! - *stalled* (members present) or *stopped* (no members): lag, and the committed offset
//!   (or the absence of one) unchanged for at least `stall_seconds`;
//! - *lagging*: lag above `max_lag`, time lag above `max_lag_seconds`, or lag that grew at
//!   every cycle of a window spanning `stall_seconds`;
//! - *ok* otherwise (consuming within the thresholds).
//!
//! The group takes its worst partition's status, and the reason names the partition.
//!
//! **Forecast**: the consume rate (Σ committed offset growth) and produce rate (Σ end offset
//! growth) over the window say whether and when the lag reaches 0.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use rill_web::format::duration_secs;
use rill_web::model::{Forecast, GroupStatus, TimeLagMethod};

/// Points kept per partition in the time-lag table (kafka-lag-exporter's default is 60).
pub const TABLE_POINTS: usize = 60;
/// A status window never holds more points than this, whatever the interval and thresholds
/// (1 s cycles and a one-hour stall threshold would otherwise keep 3,600 per partition).
pub const MAX_WINDOW_POINTS: usize = 720;
/// The forecast looks at least this far back.
pub const FORECAST_WINDOW_MS: i64 = 60_000;

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

    /// Time lag in seconds of the record at offset `committed` at `now_ms`, and how it was
    /// found: 0 when caught up with the newest point, interpolated when the table covers
    /// the offset, `None` when it does not (the caller reads the record's timestamp).
    pub fn lag_seconds(&self, committed: i64, now_ms: i64) -> Option<(f64, TimeLagMethod)> {
        let &(_, newest) = self.points.back()?;
        if committed >= newest {
            return Some((0.0, TimeLagMethod::CaughtUp));
        }
        let written = self.time_written(committed)?;
        Some((
            ((now_ms as f64 - written) / 1000.0).max(0.0),
            TimeLagMethod::Interpolated,
        ))
    }

    /// When the record at `offset` was appended: the end offset passed `offset + 1` then.
    /// `None` when the table does not reach back that far.
    fn time_written(&self, offset: i64) -> Option<f64> {
        let target = offset + 1;
        let mut prev = *self.points.front()?;
        if offset < prev.1 {
            return None;
        }
        for &p in self.points.iter().skip(1) {
            if target <= p.1 {
                debug_assert!(p.1 > prev.1, "points around the offset must differ");
                let frac = (target - prev.1) as f64 / (p.1 - prev.1) as f64;
                return Some(prev.0 as f64 + frac * (p.0 - prev.0) as f64);
            }
            prev = p;
        }
        None
    }
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

impl Thresholds {
    /// How far back the status window reaches: the longest threshold, and at least the
    /// forecast's window.
    pub fn window_ms(&self) -> i64 {
        let longest_s = (self.stall_seconds as f64).max(self.max_lag_seconds).ceil();
        ((longest_s * 1000.0) as i64).max(FORECAST_WINDOW_MS)
    }
}

/// One measured cycle of a group partition, for the status window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagPoint {
    /// Cycle time, ms.
    pub ts_ms: i64,
    /// Committed offset (-1 for none).
    pub committed: i64,
    /// End offset.
    pub end: i64,
    /// Lag (≥ 0; from the log start when nothing is committed).
    pub lag: i64,
}

/// The measured points of one group partition over the last [`Thresholds::window_ms`],
/// oldest first. Cycles that could not measure it add nothing (a gap, not a zero).
#[derive(Debug, Clone, Default)]
pub struct Window {
    points: VecDeque<LagPoint>,
}

impl Window {
    /// Adds this cycle's point and forgets what the window no longer needs: the oldest
    /// point is dropped only while the next one still reaches back `keep_ms`, so the window
    /// always spans the thresholds once history allows.
    pub fn push(&mut self, p: LagPoint, keep_ms: i64) {
        if self.points.back().is_some_and(|last| p.ts_ms <= last.ts_ms) {
            return;
        }
        self.points.push_back(p);
        let horizon = p.ts_ms - keep_ms;
        while self.points.len() > 1 && self.points[1].ts_ms <= horizon {
            self.points.pop_front();
        }
        while self.points.len() > MAX_WINDOW_POINTS {
            self.points.pop_front();
        }
    }

    /// The partition's status and why, from the window (`has_members`: the group has
    /// members; `lag_seconds`: this cycle's time lag).
    pub fn status(
        &self,
        lag_seconds: Option<f64>,
        has_members: bool,
        t: &Thresholds,
    ) -> (GroupStatus, String) {
        let Some(last) = self.points.back() else {
            return (GroupStatus::Errored, "no data yet".into());
        };
        if last.lag <= 0 {
            return (GroupStatus::Ok, "caught up".into());
        }
        // The oldest point since which the committed offset has been what it is now.
        let since = self
            .points
            .iter()
            .rev()
            .take_while(|p| p.committed == last.committed)
            .last()
            .unwrap_or(last);
        let still_ms = last.ts_ms - since.ts_ms;
        if still_ms >= t.stall_seconds.saturating_mul(1000) {
            let what = if last.committed < 0 {
                "no offset committed".to_string()
            } else {
                format!("committed offset {} unchanged", last.committed)
            };
            let grew = last.end - since.end;
            let tail = if grew > 0 {
                format!("while the end offset grew by {grew}")
            } else {
                format!("with lag {}", last.lag)
            };
            let status = if has_members {
                GroupStatus::Stalled
            } else {
                GroupStatus::Stopped
            };
            let who = if has_members { "" } else { " (no members)" };
            return (
                status,
                format!(
                    "{what} for {}{who} {tail}",
                    duration_secs(still_ms as f64 / 1000.0)
                ),
            );
        }
        if last.lag > t.max_lag {
            return (
                GroupStatus::Lagging,
                format!("lag {} above the threshold {}", last.lag, t.max_lag),
            );
        }
        if let Some(s) = lag_seconds.filter(|s| *s > t.max_lag_seconds) {
            return (
                GroupStatus::Lagging,
                format!(
                    "time lag {s:.0} s above the threshold {} s",
                    t.max_lag_seconds
                ),
            );
        }
        let first = self.points.front().unwrap_or(last);
        let spans_window = last.ts_ms - first.ts_ms >= t.stall_seconds.saturating_mul(1000);
        let grew_every_cycle = self.points.len() >= 3
            && self
                .points
                .iter()
                .zip(self.points.iter().skip(1))
                .all(|(a, b)| b.lag > a.lag);
        if spans_window && grew_every_cycle {
            return (
                GroupStatus::Lagging,
                format!(
                    "lag grew at every cycle for {}, from {} to {}",
                    duration_secs((last.ts_ms - first.ts_ms) as f64 / 1000.0),
                    first.lag,
                    last.lag
                ),
            );
        }
        (GroupStatus::Ok, format!("consuming, lag {}", last.lag))
    }

    /// (consumed, produced, span ms) over the window: committed and end offset growth from
    /// the oldest point; `None` with fewer than two points.
    fn progress(&self) -> Option<(i64, i64, i64)> {
        let first = self.points.front()?;
        let last = self.points.back()?;
        let span = last.ts_ms - first.ts_ms;
        if span <= 0 {
            return None;
        }
        let consumed = if first.committed >= 0 && last.committed >= 0 {
            (last.committed - first.committed).max(0)
        } else {
            0
        };
        Some((consumed, (last.end - first.end).max(0), span))
    }
}

/// The forecast of a group from its partitions' windows and current lags (`None`: unknown).
pub fn forecast<'a>(partitions: impl Iterator<Item = (&'a Window, Option<i64>)>) -> Forecast {
    let mut lag = 0_i64;
    let (mut consume, mut produce) = (0.0_f64, 0.0_f64);
    let mut any = false;
    for (w, l) in partitions {
        let Some(l) = l else {
            return Forecast::Unknown;
        };
        lag += l;
        let Some((consumed, produced, span)) = w.progress() else {
            continue;
        };
        any = true;
        consume += consumed as f64 * 1000.0 / span as f64;
        produce += produced as f64 * 1000.0 / span as f64;
    }
    if lag == 0 {
        return Forecast::CaughtUp;
    }
    if !any {
        return Forecast::Unknown;
    }
    if consume <= 0.0 {
        return Forecast::NotConsuming {
            produce_rate: produce,
        };
    }
    if consume > produce {
        return Forecast::CatchingUp {
            seconds: lag as f64 / (consume - produce),
            consume_rate: consume,
            produce_rate: produce,
        };
    }
    Forecast::FallingBehind {
        consume_rate: consume,
        produce_rate: produce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_the_table_and_never_extrapolates() {
        let mut t = OffsetTable::default();
        t.add(10_000, 100);
        t.add(20_000, 200);
        t.add(30_000, 300);
        // The record at 149 was appended when the end passed 150, at t=15 s.
        assert_eq!(
            t.lag_seconds(149, 30_000),
            Some((15.0, TimeLagMethod::Interpolated))
        );
        assert_eq!(
            t.lag_seconds(300, 30_000),
            Some((0.0, TimeLagMethod::CaughtUp))
        );
        // Older than the table: no guess (the collector reads the record's timestamp).
        assert_eq!(t.lag_seconds(50, 30_000), None);
        // The same inputs, the same answer.
        assert_eq!(t.lag_seconds(149, 30_000), t.lag_seconds(149, 30_000));
    }

    #[test]
    fn flat_runs_are_compressed_and_regressions_reset() {
        let mut t = OffsetTable::default();
        t.add(1_000, 10);
        t.add(2_000, 10);
        t.add(3_000, 10);
        assert_eq!(t.len(), 2);
        // A flat run: the record at 10 was appended after the run's last point.
        t.add(4_000, 20);
        assert_eq!(
            t.lag_seconds(10, 4_000),
            Some((0.9, TimeLagMethod::Interpolated))
        );
        t.add(5_000, 5);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lag_seconds(1, 5_000), None, "one point is not enough");
    }

    fn window(pts: &[(i64, i64, i64, i64)], keep_ms: i64) -> Window {
        let mut w = Window::default();
        for &(ts_ms, committed, end, lag) in pts {
            w.push(
                LagPoint {
                    ts_ms,
                    committed,
                    end,
                    lag,
                },
                keep_ms,
            );
        }
        w
    }

    #[test]
    fn every_status_is_reachable_with_the_default_thresholds() {
        let th = Thresholds::default();
        let keep = th.window_ms();
        assert!(keep >= th.stall_seconds * 1000);
        // Points every 10 s (the default interval) for 11 minutes, committed offset still.
        let still: Vec<_> = (0..=66)
            .map(|i| (i * 10_000, 500, 1000 + i * 10, 500 + i * 10))
            .collect();
        let w = window(&still, keep);
        let (s, why) = w.status(None, false, &th);
        assert_eq!(s, GroupStatus::Stopped, "{why}");
        assert!(why.contains("unchanged for"), "{why}");
        assert!(why.contains("end offset grew by"), "{why}");
        assert_eq!(w.status(None, true, &th).0, GroupStatus::Stalled);
        assert!(w.points.len() <= 14, "the window is bounded by time");

        // Never committed, members present: stalled too (not "caught up").
        let none: Vec<_> = (0..=13).map(|i| (i * 10_000, -1, 800, 800)).collect();
        assert_eq!(
            window(&none, keep).status(None, true, &th).0,
            GroupStatus::Stalled
        );

        // Moving but far behind: lagging; by time lag: lagging; small lag: ok.
        let big = window(&[(0, 5, 5000, 4995), (10_000, 50, 5100, 5050)], keep);
        assert_eq!(big.status(None, true, &th).0, GroupStatus::Lagging);
        let slow = window(&[(0, 5, 15, 10), (10_000, 6, 16, 10)], keep);
        assert_eq!(slow.status(Some(75.0), true, &th).0, GroupStatus::Lagging);
        assert_eq!(slow.status(Some(5.0), true, &th).0, GroupStatus::Ok);
        // Lag growing at every cycle for the whole window: lagging.
        let growing: Vec<_> = (0..=13)
            .map(|i| (i * 10_000, i * 5, 10 + i * 15, 10 + i * 10))
            .collect();
        assert_eq!(
            window(&growing, keep).status(None, true, &th).0,
            GroupStatus::Lagging
        );
        assert_eq!(
            window(&[(0, 5, 5, 0)], keep).status(None, false, &th).0,
            GroupStatus::Ok
        );
        assert_eq!(
            Window::default().status(None, true, &th).0,
            GroupStatus::Errored
        );
    }

    #[test]
    fn forecasts_from_rates() {
        let keep = Thresholds::default().window_ms();
        // Consumes 20/s, producers write 10/s, lag 600: 60 s to catch up.
        let fast = window(&[(0, 0, 1000, 1000), (10_000, 200, 1100, 900)], keep);
        match forecast([(&fast, Some(600))].into_iter()) {
            Forecast::CatchingUp { seconds, .. } => assert!((seconds - 60.0).abs() < 1e-9),
            f => panic!("{f:?}"),
        }
        let slow = window(&[(0, 0, 1000, 1000), (10_000, 50, 1100, 1050)], keep);
        assert!(matches!(
            forecast([(&slow, Some(1050))].into_iter()),
            Forecast::FallingBehind { .. }
        ));
        let idle = window(&[(0, 0, 1000, 1000), (10_000, 0, 1100, 1100)], keep);
        assert!(matches!(
            forecast([(&idle, Some(1100))].into_iter()),
            Forecast::NotConsuming { .. }
        ));
        assert_eq!(forecast([(&idle, Some(0))].into_iter()), Forecast::CaughtUp);
        assert_eq!(forecast([(&idle, None)].into_iter()), Forecast::Unknown);
        let one = window(&[(0, 0, 1000, 1000)], keep);
        assert_eq!(forecast([(&one, Some(5))].into_iter()), Forecast::Unknown);
    }
}
