//! Kafka's sampled rate (`org.apache.kafka.common.metrics.stats.Rate` over `SampledStat`), the
//! measure every client quota is checked against: `samples` windows of `window` each; a
//! value lands in the current window, a window older than `samples × window` counts for
//! nothing, and the rate is the sum over the windows divided by the time they span, taken
//! as at least `samples − 1` full windows so that one burst right after a quiet period (or
//! at start) is not measured over a few milliseconds.
//!
//! Pure logic over explicit instants (milliseconds from any origin), so it is tested by tables.

use crate::config::quota::MAX_WINDOWS;

/// One window.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// When the window began.
    start_ms: u64,
    /// What was recorded in it.
    value: f64,
    /// How many records (for averages).
    count: u64,
}

/// The windows of one measured quantity.
#[derive(Debug, Clone)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
    window_ms: u64,
}

impl Rate {
    /// A rate over `samples` windows of `window_ms`, starting at `now_ms`.
    pub fn new(samples: usize, window_ms: u64, now_ms: u64) -> Rate {
        let n = samples.clamp(1, MAX_WINDOWS as usize);
        Rate {
            samples: vec![
                Sample {
                    start_ms: now_ms,
                    ..Sample::default()
                };
                n
            ],
            current: 0,
            window_ms: window_ms.max(1),
        }
    }

    /// Adds `value` at `now_ms` (Kafka's `SampledStat.record`: a window that is complete
    /// gives way to the next, which starts now).
    pub fn record(&mut self, value: f64, now_ms: u64) {
        debug_assert!(value.is_finite());
        let cur = self.samples[self.current];
        if now_ms.saturating_sub(cur.start_ms) >= self.window_ms {
            self.current = (self.current + 1) % self.samples.len();
            self.samples[self.current] = Sample {
                start_ms: now_ms,
                value: 0.0,
                count: 0,
            };
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.count += 1;
    }

    /// Takes back a value recorded at `now_ms` (Kafka unrecords a throttled fetch, whose
    /// answer is empty).
    pub fn unrecord(&mut self, value: f64, now_ms: u64) {
        self.record(-value, now_ms);
        let s = &mut self.samples[self.current];
        // The unrecord is not an event of its own.
        s.count = s.count.saturating_sub(2);
    }

    fn purge(&mut self, now_ms: u64) {
        let expire = self.window_ms * self.samples.len() as u64;
        for s in &mut self.samples {
            if now_ms.saturating_sub(s.start_ms) >= expire {
                *s = Sample {
                    start_ms: now_ms,
                    value: 0.0,
                    count: 0,
                };
            }
        }
    }

    /// The span the rate divides by, in milliseconds (Kafka's `Rate.windowSize`).
    pub fn window_size_ms(&mut self, now_ms: u64) -> u64 {
        self.purge(now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / self.window_ms;
        let min_full = self.samples.len() as u64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second at `now_ms`.
    pub fn per_second(&mut self, now_ms: u64) -> f64 {
        let span = self.window_size_ms(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total.max(0.0) * 1000.0 / span as f64
    }

    /// The average of the recorded values still in the windows (Kafka's `Avg`), 0 without any.
    pub fn average(&mut self, now_ms: u64) -> f64 {
        self.purge(now_ms);
        let count: u64 = self.samples.iter().map(|s| s.count).sum();
        if count == 0 {
            return 0.0;
        }
        self.samples.iter().map(|s| s.value).sum::<f64>() / count as f64
    }
}

/// Kafka's `TokenBucket` (KIP-599), the measure of `controller_mutation_rate`: a bucket of
/// `samples × window` seconds' worth of the quota, refilled at the quota's rate, which a
/// mutation empties by its partition count and may drive below zero (a request that fits
/// is admitted whole); the client is over its quota while the bucket is below zero.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket for `bound` per second over `samples × window_ms`.
    pub fn new(bound: f64, samples: usize, window_ms: u64, now_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: Self::burst(bound, samples, window_ms),
            last_ms: now_ms,
        }
    }

    fn burst(bound: f64, samples: usize, window_ms: u64) -> f64 {
        bound * samples as f64 * window_ms as f64 / 1000.0
    }

    /// The tokens at `now_ms`, refilled since the last look.
    pub fn tokens(&mut self, bound: f64, samples: usize, window_ms: u64, now_ms: u64) -> f64 {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.tokens =
            (self.tokens + bound * elapsed / 1000.0).min(Self::burst(bound, samples, window_ms));
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens
    }

    /// Takes `permits` at `now_ms` (the bucket may go negative).
    pub fn take(&mut self, permits: f64, bound: f64, samples: usize, window_ms: u64, now_ms: u64) {
        self.tokens(bound, samples, window_ms, now_ms);
        self.tokens -= permits;
    }
}

/// How long a client whose bucket holds `tokens` waits for it to be back at zero (Kafka's
/// `-tokens / bound`), in milliseconds.
pub fn bucket_throttle_ms(tokens: f64, bound: f64) -> u64 {
    if tokens >= 0.0 || bound <= 0.0 {
        return 0;
    }
    (-tokens / bound * 1000.0).round().min(u64::MAX as f64) as u64
}

/// Kafka's `QuotaUtils.throttleTime`: how long a client measured at `observed` must wait for
/// its rate over `window_ms` to come back to `bound`, in milliseconds (0 within the bound).
pub fn throttle_ms(observed: f64, bound: f64, window_ms: u64) -> u64 {
    if observed <= bound || bound <= 0.0 {
        return 0;
    }
    let ms = (observed - bound) / bound * window_ms as f64;
    ms.round().min(u64::MAX as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_at_start_is_measured_over_the_minimum_span() {
        let mut r = Rate::new(11, 1000, 0);
        r.record(10_000.0, 5);
        // Ten full windows at least: 10 000 bytes over 10 s.
        assert_eq!(r.window_size_ms(5), 10_005);
        assert!((r.per_second(5) - 10_000.0 * 1000.0 / 10_005.0).abs() < 1e-6);
    }

    #[test]
    fn a_steady_rate_is_measured_as_such_and_old_windows_expire() {
        let mut r = Rate::new(11, 1000, 0);
        for s in 0..30u64 {
            r.record(1000.0, s * 1000);
        }
        let rate = r.per_second(29_500);
        assert!((rate - 1000.0).abs() < 100.0, "{rate}");
        // Twelve seconds of silence empty every window.
        assert_eq!(r.per_second(42_000), 0.0);
    }

    #[test]
    fn throttle_time_is_kafkas_formula() {
        // Twice the bound over 10 s: wait 10 s for the average to halve.
        assert_eq!(throttle_ms(2000.0, 1000.0, 10_000), 10_000);
        assert_eq!(throttle_ms(1100.0, 1000.0, 10_000), 1000);
        assert_eq!(throttle_ms(999.0, 1000.0, 10_000), 0);
    }

    #[test]
    fn the_token_bucket_admits_a_burst_then_refills_at_the_rate() {
        // 2 mutations/s over 11 windows of 1 s: 22 tokens.
        let mut b = TokenBucket::new(2.0, 11, 1000, 0);
        assert_eq!(b.tokens(2.0, 11, 1000, 0), 22.0);
        b.take(30.0, 2.0, 11, 1000, 0);
        assert_eq!(b.tokens(2.0, 11, 1000, 0), -8.0);
        assert_eq!(bucket_throttle_ms(-8.0, 2.0), 4000);
        // Four seconds later it is back at zero; it never fills beyond the burst.
        assert_eq!(b.tokens(2.0, 11, 1000, 4000), 0.0);
        assert_eq!(b.tokens(2.0, 11, 1000, 1_000_000), 22.0);
        assert_eq!(bucket_throttle_ms(1.0, 2.0), 0);
    }

    #[test]
    fn unrecord_takes_a_value_back_and_averages_count_records() {
        let mut r = Rate::new(11, 1000, 0);
        r.record(500.0, 1);
        r.unrecord(500.0, 2);
        assert_eq!(r.per_second(3), 0.0);
        let mut a = Rate::new(11, 1000, 0);
        a.record(10.0, 1);
        a.record(30.0, 2);
        assert_eq!(a.average(3), 20.0);
    }
}
