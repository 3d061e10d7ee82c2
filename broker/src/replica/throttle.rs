//! Replication throttles, Kafka's names and semantics: the broker dynamic configs
//! `leader.replication.throttled.rate` and `follower.replication.throttled.rate` (bytes/s,
//! per broker) bound how fast this node serves (as leader) and copies (as follower) the
//! replicas that the topic configs `leader.replication.throttled.replicas` and
//! `follower.replication.throttled.replicas` name (`partition:broker` pairs or `*`). As in
//! Kafka, only replicas outside the ISR are throttled, so a reassignment's copy is slowed
//! but a caught-up follower never falls behind because of it.
//!
//! Each side is one token bucket per broker ([`Quota`]): a throttled fetch may take what the
//! bucket holds (at least one batch, KIP-74), the bytes actually moved are taken out
//! afterwards, and an overdrawn bucket holds throttled partitions back until it refills, so
//! the average rate stays at the limit however large the batches are. A new limit starts
//! from an empty bucket; a full one holds half a second of the rate, but at least a largest
//! batch (so no partition can starve), which is the burst after a quiet spell (Kafka's
//! quota, averaged over 11 one-second windows, allows about ten seconds' worth).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metadata::MetadataImage;
use crate::types::BrokerId;

use crate::config::dynamic::{FOLLOWER_RATE, LEADER_RATE};

/// How many seconds of the rate a full bucket holds: the largest burst after a quiet spell.
const BURST_SECONDS: f64 = 0.5;
/// The least a full bucket holds, whatever the rate: a batch up to `max.message.bytes` must
/// fit in one fetch's budget, or a throttled partition that is not first in a fetch response
/// (where KIP-74 lets one batch exceed the limit) could wait forever.
const MIN_BURST_BYTES: f64 = 1_100_000.0;

/// A broker's rate limit for `key` from the image (its own value, else the cluster default);
/// `None` when unset or not a positive number.
pub fn rate(image: &MetadataImage, broker: BrokerId, key: &str) -> Option<u64> {
    image
        .broker_config(broker, key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|r| *r > 0 && *r < i64::MAX as u64)
}

#[derive(Debug)]
struct Bucket {
    rate: Option<u64>,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            let dt = now.saturating_duration_since(self.last).as_secs_f64();
            let cap = (rate as f64 * BURST_SECONDS).max(MIN_BURST_BYTES);
            self.tokens = (self.tokens + dt * rate as f64).min(cap);
        }
        self.last = now;
    }
}

/// One rate limit (bytes/s) as a token bucket that may be overdrawn.
#[derive(Debug)]
pub struct Quota {
    bucket: Mutex<Bucket>,
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            bucket: Mutex::new(Bucket {
                rate: None,
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }
}

impl Quota {
    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // Plain numbers, consistent after every statement.
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the limit (`None`: unlimited). A new limit starts from an empty bucket.
    pub fn set_rate(&self, rate: Option<u64>) {
        let mut b = self.lock();
        if b.rate != rate {
            if rate.is_some() {
                tracing::info!(rate = ?rate, "replication throttle set");
            }
            b.rate = rate;
            b.tokens = 0.0;
            b.last = Instant::now();
        }
    }

    /// The limit, bytes/s.
    pub fn rate(&self) -> Option<u64> {
        self.lock().rate
    }

    /// How many bytes a throttled fetch may take now: `None` without a limit, `Some(0)` while
    /// the bucket is empty or overdrawn.
    pub fn available(&self) -> Option<usize> {
        let mut b = self.lock();
        b.rate?;
        b.refill(Instant::now());
        Some(if b.tokens >= 1.0 {
            b.tokens as usize
        } else {
            0
        })
    }

    /// Takes `bytes` moved by a throttled fetch out of the bucket.
    pub fn record(&self, bytes: usize) {
        let mut b = self.lock();
        if b.rate.is_some() && bytes > 0 {
            b.refill(Instant::now());
            b.tokens -= bytes as f64;
        }
    }

    /// How long until the bucket holds something again (zero when it does, or is unlimited).
    pub fn wait(&self) -> Duration {
        let mut b = self.lock();
        let Some(rate) = b.rate else {
            return Duration::ZERO;
        };
        b.refill(Instant::now());
        if b.tokens >= 1.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - b.tokens) / rate as f64).max(Duration::from_millis(10))
    }
}

/// This broker's two replication quotas.
#[derive(Debug, Default)]
pub struct Throttles {
    /// Bytes served to throttled followers.
    pub leader: Quota,
    /// Bytes fetched for throttled replicas.
    pub follower: Quota,
}

impl Throttles {
    /// Takes this broker's rates from a new image.
    pub fn apply(&self, image: &MetadataImage, me: BrokerId) {
        self.leader.set_rate(rate(image, me, LEADER_RATE));
        self.follower.set_rate(rate(image, me, FOLLOWER_RATE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_the_average_rate() {
        let q = Quota::default();
        assert_eq!(q.available(), None, "unlimited");
        q.set_rate(Some(1000));
        assert_eq!(q.available(), Some(0), "a new limit starts empty");
        std::thread::sleep(Duration::from_millis(100));
        let a = q.available().expect("limited");
        assert!((50..=500).contains(&a), "about 100 ms of the rate: {a}");
        q.record(5000);
        assert_eq!(q.available(), Some(0), "overdrawn");
        assert!(q.wait() >= Duration::from_secs(3), "{:?}", q.wait());
        q.set_rate(None);
        assert_eq!(q.wait(), Duration::ZERO);
    }
}
