//! Repeated errors, logged once per interval with a count. A failure that recurs for every
//! partition on every metadata change (a full disk, a file limit reached) must cost a few log
//! lines, not gigabytes: the first occurrence of a kind of error is logged, later ones within
//! the interval are only counted, and the next line after the interval says how many were
//! left out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most distinct error kinds remembered at once; beyond it, kinds not seen for an interval
/// are forgotten (and, if none are, all of them), so the table itself stays bounded.
pub const MAX_KINDS: usize = 1024;

/// How often one kind of error is logged at most, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// A rate limiter for log lines, keyed by the kind of error (e.g. "open failed in dir X:
/// too many open files"), never by the object it happened to (the partition).
pub struct Repeated {
    interval: Duration,
    kinds: Mutex<HashMap<String, Kind>>,
}

struct Kind {
    logged_at: Instant,
    left_out: u64,
}

impl Repeated {
    /// A limiter that lets one line per kind through every `interval`.
    pub fn new(interval: Duration) -> Repeated {
        Repeated {
            interval,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log this occurrence of `kind` now: `Some(n)` with the number of occurrences
    /// left out since its last line (0 the first time), `None` to stay quiet.
    pub fn check(&self, kind: &str) -> Option<u64> {
        self.check_at(kind, Instant::now())
    }

    fn check_at(&self, kind: &str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = kinds.get_mut(kind) {
            if now.duration_since(k.logged_at) < self.interval {
                k.left_out += 1;
                return None;
            }
            let left_out = std::mem::take(&mut k.left_out);
            k.logged_at = now;
            return Some(left_out);
        }
        if kinds.len() >= MAX_KINDS {
            let interval = self.interval;
            kinds.retain(|_, k| now.duration_since(k.logged_at) < interval);
            if kinds.len() >= MAX_KINDS {
                kinds.clear();
            }
        }
        kinds.insert(
            kind.to_string(),
            Kind {
                logged_at: now,
                left_out: 0,
            },
        );
        Some(0)
    }
}

impl Default for Repeated {
    fn default() -> Self {
        Repeated::new(DEFAULT_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_with_the_count() {
        let r = Repeated::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.check_at("a", t0), Some(0));
        for i in 1..=500 {
            assert_eq!(r.check_at("a", t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(r.check_at("b", t0), Some(0), "another kind is logged");
        assert_eq!(r.check_at("a", t0 + Duration::from_secs(10)), Some(500));
        assert_eq!(r.check_at("a", t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let r = Repeated::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..(MAX_KINDS * 3) {
            assert_eq!(r.check_at(&format!("k{i}"), t0), Some(0));
        }
        assert!(r.kinds.lock().unwrap().len() <= MAX_KINDS);
    }
}
