//! The one lag computation: what a group is behind on one partition, used by the console's
//! collector (pages, JSON, `/metrics`, history) and by `rill groups --describe`, so every
//! surface shows the same number.
//!
//! Kafka's tools show `end − committed` and nothing where nothing is committed. A partition
//! a group consumes (it is assigned, or it has a commit) without a committed offset is not
//! "no lag": its consumer will start from `auto.offset.reset`, so Rill counts the backlog
//! it faces from the log start (`end − log start`: what `earliest` would read) and labels
//! it [`LagBasis::LogStart`]. An unknown end offset gives an unknown lag, never 0.

pub use rill_web::model::LagBasis;

/// A partition's lag in messages and what it counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Messages behind (≥ 0), `None` when it could not be measured.
    pub messages: Option<i64>,
    /// What `messages` counts from.
    pub basis: LagBasis,
}

/// The lag of a group on one partition, from the committed offset (`None`: nothing
/// committed), the log start and the log end (`None`: not measured). Offsets below 0 are
/// treated as not known.
pub fn partition_lag(committed: Option<i64>, log_start: Option<i64>, log_end: Option<i64>) -> Lag {
    let known = |o: Option<i64>| o.filter(|o| *o >= 0);
    let unknown = Lag {
        messages: None,
        basis: LagBasis::Unknown,
    };
    let Some(end) = known(log_end) else {
        return unknown;
    };
    match known(committed) {
        // A committed offset past the end (a truncated or recreated partition) is 0 behind,
        // as Kafka's tools clamp it.
        Some(c) => Lag {
            messages: Some((end - c).max(0)),
            basis: LagBasis::Committed,
        },
        None => match known(log_start) {
            Some(start) => Lag {
                messages: Some((end - start).max(0)),
                basis: LagBasis::LogStart,
            },
            None => unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_no_commit_and_unknown() {
        let l = partition_lag(Some(4), Some(0), Some(10));
        assert_eq!((l.messages, l.basis), (Some(6), LagBasis::Committed));

        // Never committed: the backlog from the log start, not 0 and not "caught up".
        let l = partition_lag(None, Some(3), Some(10));
        assert_eq!((l.messages, l.basis), (Some(7), LagBasis::LogStart));
        assert_eq!(
            partition_lag(Some(-1), Some(3), Some(10)).basis,
            LagBasis::LogStart
        );

        // An unknown end offset is an unknown lag whatever else is known.
        for l in [
            partition_lag(Some(4), Some(0), None),
            partition_lag(Some(4), Some(0), Some(-1)),
            partition_lag(None, None, Some(10)),
        ] {
            assert_eq!((l.messages, l.basis), (None, LagBasis::Unknown));
        }

        // Past the end: 0 behind.
        assert_eq!(partition_lag(Some(12), Some(0), Some(10)).messages, Some(0));
    }
}
