//! Client quotas enforced (KIP-13, KIP-55, KIP-124, KIP-219; the quotas themselves are
//! `metadata/quota.rs`): each connection's user and client id resolve to at most one quota
//! per kind, its use is measured by a [`rate::Rate`] per sensor (Kafka's metric tags: the
//! user, the client id, or both), and a request that takes a sensor past its bound is
//! answered with `throttle_time_ms` and the connection is then muted that long
//! (`net/mod.rs`), as Kafka's ClientQuotaManager and ThrottledChannel do.
//!
//! Nothing is measured for a kind no entity sets (Kafka's `quotasEnabled`), so a cluster
//! without quotas pays one check of the image per request. Sensors are at most
//! [`MAX_SENSORS`]; one idle for [`SENSOR_EXPIRY`] is dropped with its metrics (client ids
//! come from the network, so their number must not grow without bound).

pub mod rate;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};

use crate::config::quota::QuotaConfig;
use crate::metadata::quota::{ClientQuotas, QuotaKey};
use rate::{Rate, TokenBucket};

/// Most sensors kept at once; beyond it the least recently used one is dropped.
pub const MAX_SENSORS: usize = 10_000;
/// A sensor not used for this long is dropped (Kafka's inactive sensor expiration).
pub const SENSOR_EXPIRY: Duration = Duration::from_secs(3600);
/// How often idle sensors are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What is measured, one per quota key that throttles connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Produce request bytes (`producer_byte_rate`).
    Produce,
    /// Fetch response bytes (`consumer_byte_rate`).
    Fetch,
    /// Request handling time in percent of a thread (`request_percentage`).
    Request,
    /// Partitions created or deleted (`controller_mutation_rate`, KIP-599), measured by a
    /// token bucket rather than a rate.
    ControllerMutation,
}

impl QuotaKind {
    /// The quota key bounding this kind.
    pub fn key(self) -> QuotaKey {
        match self {
            QuotaKind::Produce => QuotaKey::ProducerByteRate,
            QuotaKind::Fetch => QuotaKey::ConsumerByteRate,
            QuotaKind::Request => QuotaKey::RequestPercentage,
            QuotaKind::ControllerMutation => QuotaKey::ControllerMutationRate,
        }
    }

    fn label(self) -> &'static str {
        match self {
            QuotaKind::Produce => "produce",
            QuotaKind::Fetch => "fetch",
            QuotaKind::Request => "request",
            QuotaKind::ControllerMutation => "controller_mutation",
        }
    }
}

/// Who a request is measured for: its principal's name and its client id.
#[derive(Debug, Clone, Copy)]
pub struct ClientRef<'a> {
    /// The principal's name without `User:` (`ANONYMOUS` when unauthenticated).
    pub user: &'a str,
    /// The header's client id.
    pub client_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SensorKey {
    kind: QuotaKind,
    user: String,
    client_id: String,
}

struct Sensor {
    usage: Rate,
    throttle: Rate,
    /// The token bucket of a controller-mutation sensor.
    bucket: Option<TokenBucket>,
    /// Its tokens when last used (the gauge's value).
    tokens: f64,
    last_used: Instant,
}

struct Sensors {
    map: HashMap<SensorKey, Sensor>,
    last_sweep: Instant,
}

/// The node's quota sensors and their metrics.
pub struct QuotaManager {
    config: QuotaConfig,
    sensors: Mutex<Sensors>,
    origin: Instant,
    metrics: QuotaMetrics,
}

struct QuotaMetrics {
    /// `kafka_server_{produce,fetch}_byte_rate`, `kafka_server_request_request_time`,
    /// `kafka_server_controllermutation_tokens`.
    usage: [GaugeVec; 4],
    /// `kafka_server_{produce,fetch,request,controllermutation}_throttle_time` (average ms
    /// over the windows).
    throttle_time: [GaugeVec; 4],
    /// `rill_client_quota_throttled_total{quota}`: throttled responses.
    throttled: IntCounterVec,
}

fn index(kind: QuotaKind) -> usize {
    match kind {
        QuotaKind::Produce => 0,
        QuotaKind::Fetch => 1,
        QuotaKind::Request => 2,
        QuotaKind::ControllerMutation => 3,
    }
}

impl QuotaMetrics {
    fn new(registry: &Registry) -> prometheus::Result<QuotaMetrics> {
        let gauge = |name: &str, help: &str| -> prometheus::Result<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), &["user", "client_id"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let throttled = IntCounterVec::new(
            Opts::new(
                "rill_client_quota_throttled_total",
                "Responses throttled by a client quota, by quota (produce, fetch, request).",
            ),
            &["quota"],
        )?;
        registry.register(Box::new(throttled.clone()))?;
        Ok(QuotaMetrics {
            usage: [
                gauge(
                    "kafka_server_produce_byte_rate",
                    "Produce bytes per second of a quota sensor (user, client id).",
                )?,
                gauge(
                    "kafka_server_fetch_byte_rate",
                    "Fetch bytes per second of a quota sensor (user, client id).",
                )?,
                gauge(
                    "kafka_server_request_request_time",
                    "Request handling time of a quota sensor, percent of one thread.",
                )?,
                gauge(
                    "kafka_server_controllermutation_tokens",
                    "Partition mutations left in a controller mutation quota's bucket.",
                )?,
            ],
            throttle_time: [
                gauge(
                    "kafka_server_produce_throttle_time",
                    "Average produce throttle time (ms) of a quota sensor.",
                )?,
                gauge(
                    "kafka_server_fetch_throttle_time",
                    "Average fetch throttle time (ms) of a quota sensor.",
                )?,
                gauge(
                    "kafka_server_request_throttle_time",
                    "Average request-quota throttle time (ms) of a quota sensor.",
                )?,
                gauge(
                    "kafka_server_controllermutation_throttle_time",
                    "Average controller-mutation throttle time (ms) of a quota sensor.",
                )?,
            ],
            throttled,
        })
    }

    fn remove(&self, key: &SensorKey) {
        let i = index(key.kind);
        let labels = [key.user.as_str(), key.client_id.as_str()];
        let _ = self.usage[i].remove_label_values(&labels);
        let _ = self.throttle_time[i].remove_label_values(&labels);
    }
}

impl QuotaManager {
    /// A manager with `config`'s windows, its metrics registered in `registry`.
    pub fn new(config: QuotaConfig, registry: &Registry) -> prometheus::Result<QuotaManager> {
        let now = Instant::now();
        Ok(QuotaManager {
            config,
            sensors: Mutex::new(Sensors {
                map: HashMap::new(),
                last_sweep: now,
            }),
            origin: now,
            metrics: QuotaMetrics::new(registry)?,
        })
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    fn window_ms(&self) -> u64 {
        u64::from(self.config.window_size_seconds) * 1000
    }

    /// Records `amount` of `kind` for `client` at `now` and answers how long it must now be
    /// throttled (zero within its quota or without one).
    pub fn record(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: ClientRef<'_>,
        amount: f64,
        now: Instant,
    ) -> Duration {
        self.measure(quotas, kind, client, amount, now, true)
    }

    /// Takes back what [`QuotaManager::record`] recorded (a throttled fetch is answered empty,
    /// so its bytes were never sent).
    pub fn unrecord(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: ClientRef<'_>,
        amount: f64,
        now: Instant,
    ) {
        self.measure(quotas, kind, client, amount, now, false);
    }

    /// The most of `kind` one request may take: what the quota allows over all windows but
    /// the current one (Kafka's `getMaxValueInQuotaWindow`, which caps a consumer's fetch so
    /// one response cannot take many windows' worth at once). `None` without a quota.
    pub fn max_in_window(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: ClientRef<'_>,
    ) -> Option<u64> {
        if !quotas.any(kind.key()) {
            return None;
        }
        let q = quotas.resolve(kind.key(), client.user, client.client_id)?;
        let windows = f64::from(self.config.window_num.saturating_sub(1).max(1));
        let max = q.bound * windows * f64::from(self.config.window_size_seconds);
        Some(max.min(u64::MAX as f64) as u64)
    }

    /// Counts a throttled response (once per response, whichever quota throttled it).
    pub fn count_throttled(&self, kind: QuotaKind) {
        self.metrics
            .throttled
            .with_label_values(&[kind.label()])
            .inc();
    }

    fn measure(
        &self,
        quotas: &ClientQuotas,
        kind: QuotaKind,
        client: ClientRef<'_>,
        amount: f64,
        now: Instant,
        check: bool,
    ) -> Duration {
        if !quotas.any(kind.key()) {
            return Duration::ZERO;
        }
        let Some(q) = quotas.resolve(kind.key(), client.user, client.client_id) else {
            return Duration::ZERO;
        };
        let key = SensorKey {
            kind,
            user: q.user,
            client_id: q.client_id,
        };
        let now_ms = self.ms(now);
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        let sensor = self.sensor(&mut sensors, &key, now);
        if check {
            sensor.usage.record(amount, now_ms);
        } else {
            sensor.usage.unrecord(amount, now_ms);
        }
        let observed = sensor.usage.per_second(now_ms);
        let throttle = if check {
            let span = sensor.usage.window_size_ms(now_ms);
            let t = rate::throttle_ms(observed, q.bound, span);
            // Kafka bounds the request quota's throttle by one window
            // (ClientRequestQuotaManager's maxThrottleTimeMs).
            if kind == QuotaKind::Request {
                t.min(self.window_ms())
            } else {
                t
            }
        } else {
            0
        };
        if throttle > 0 {
            sensor.throttle.record(throttle as f64, now_ms);
        }
        Duration::from_millis(throttle)
    }

    /// The sensor of `key`, made (dropping the least recently used one at the bound) when
    /// there is none.
    fn sensor<'s>(
        &self,
        sensors: &'s mut Sensors,
        key: &SensorKey,
        now: Instant,
    ) -> &'s mut Sensor {
        self.sweep(sensors, now);
        if !sensors.map.contains_key(key) && sensors.map.len() >= MAX_SENSORS {
            let lru = sensors
                .map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = lru {
                sensors.map.remove(&k);
                self.metrics.remove(&k);
            }
        }
        let now_ms = self.ms(now);
        let (samples, window_ms) = (self.config.window_num as usize, self.window_ms());
        let sensor = sensors.map.entry(key.clone()).or_insert_with(|| Sensor {
            usage: Rate::new(samples, window_ms, now_ms),
            throttle: Rate::new(samples, window_ms, now_ms),
            bucket: None,
            tokens: 0.0,
            last_used: now,
        });
        sensor.last_used = now;
        sensor
    }

    fn controller_windows(&self) -> (usize, u64) {
        (
            self.config.controller_window_num as usize,
            u64::from(self.config.controller_window_size_seconds) * 1000,
        )
    }

    /// KIP-599's check and use of a client's `controller_mutation_rate`: with `permits`
    /// `None`, whether the client is over its quota now (its bucket below zero); with
    /// `Some(n)`, takes `n` partition mutations. Answers the throttle the bucket holds after
    /// (zero without a quota).
    pub fn mutation(
        &self,
        quotas: &ClientQuotas,
        client: ClientRef<'_>,
        permits: Option<u32>,
        now: Instant,
    ) -> Duration {
        let kind = QuotaKind::ControllerMutation;
        if !quotas.any(kind.key()) {
            return Duration::ZERO;
        }
        let Some(q) = quotas.resolve(kind.key(), client.user, client.client_id) else {
            return Duration::ZERO;
        };
        let key = SensorKey {
            kind,
            user: q.user,
            client_id: q.client_id,
        };
        let now_ms = self.ms(now);
        let (samples, window_ms) = self.controller_windows();
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        let sensor = self.sensor(&mut sensors, &key, now);
        let bucket = sensor
            .bucket
            .get_or_insert_with(|| TokenBucket::new(q.bound, samples, window_ms, now_ms));
        if let Some(n) = permits {
            bucket.take(f64::from(n), q.bound, samples, window_ms, now_ms);
        }
        let tokens = bucket.tokens(q.bound, samples, window_ms, now_ms);
        let throttle = rate::bucket_throttle_ms(tokens, q.bound);
        sensor.tokens = tokens;
        if throttle > 0 {
            sensor.throttle.record(throttle as f64, now_ms);
        }
        Duration::from_millis(throttle)
    }

    fn sweep(&self, sensors: &mut Sensors, now: Instant) {
        if now.saturating_duration_since(sensors.last_sweep) < SWEEP_EVERY {
            return;
        }
        sensors.last_sweep = now;
        let idle: Vec<SensorKey> = sensors
            .map
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_used) >= SENSOR_EXPIRY)
            .map(|(k, _)| k.clone())
            .collect();
        for k in idle {
            sensors.map.remove(&k);
            self.metrics.remove(&k);
        }
    }

    /// Publishes every sensor's gauges. Only at scrape time: the request path records into
    /// its sensor and touches no metric (label lookups cost more than the measurement).
    pub fn refresh_metrics(&self, now: Instant) {
        let now_ms = self.ms(now);
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        self.sweep(&mut sensors, now);
        for (key, s) in sensors.map.iter_mut() {
            let i = index(key.kind);
            let labels = [key.user.as_str(), key.client_id.as_str()];
            // A mutation sensor's gauge is its bucket as last used.
            let usage = if key.kind == QuotaKind::ControllerMutation {
                s.tokens
            } else {
                s.usage.per_second(now_ms)
            };
            self.metrics.usage[i].with_label_values(&labels).set(usage);
            self.metrics.throttle_time[i]
                .with_label_values(&labels)
                .set(s.throttle.average(now_ms));
        }
    }

    /// How many sensors are kept (for tests and the bound's check).
    pub fn sensor_count(&self) -> usize {
        self.sensors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::quota::{EntityName, QuotaChange, QuotaEntity, QuotaValue};

    fn quotas(changes: &[(Option<EntityName>, Option<EntityName>, QuotaKey, f64)]) -> ClientQuotas {
        let mut q = ClientQuotas::default();
        q.apply(
            &changes
                .iter()
                .map(|(u, c, k, v)| QuotaChange {
                    entity: QuotaEntity {
                        user: u.clone(),
                        client_id: c.clone(),
                    },
                    key: *k,
                    value: Some(QuotaValue(*v)),
                })
                .collect::<Vec<_>>(),
        )
        .expect("valid");
        q
    }

    fn manager() -> QuotaManager {
        QuotaManager::new(QuotaConfig::default(), &Registry::new()).expect("metrics")
    }

    #[test]
    fn a_client_over_its_byte_rate_is_throttled_and_others_are_not() {
        let m = manager();
        let q = quotas(&[(
            None,
            Some(EntityName::Named("slow".into())),
            QuotaKey::ProducerByteRate,
            1000.0,
        )]);
        let t0 = Instant::now();
        let slow = ClientRef {
            user: "ANONYMOUS",
            client_id: "slow",
        };
        let fast = ClientRef {
            user: "ANONYMOUS",
            client_id: "fast",
        };
        // 10 000 bytes within the minimum 10 s span is the bound exactly: no throttle.
        assert_eq!(
            m.record(&q, QuotaKind::Produce, slow, 10_000.0, t0),
            Duration::ZERO
        );
        // Another 10 000: twice the bound over ~10 s, so about 10 s of throttle.
        let t = m.record(&q, QuotaKind::Produce, slow, 10_000.0, t0);
        assert!(
            t >= Duration::from_millis(9_900) && t <= Duration::from_millis(10_100),
            "{t:?}"
        );
        assert_eq!(
            m.record(&q, QuotaKind::Produce, fast, 1e9, t0),
            Duration::ZERO
        );
        // The consumer side has no quota: not measured at all.
        assert_eq!(
            m.record(&q, QuotaKind::Fetch, slow, 1e9, t0),
            Duration::ZERO
        );
        assert_eq!(m.sensor_count(), 1);
        assert_eq!(
            m.max_in_window(&q, QuotaKind::Produce, slow),
            Some(10_000),
            "ten windows of 1000 bytes"
        );
        assert_eq!(m.max_in_window(&q, QuotaKind::Produce, fast), None);
    }

    #[test]
    fn unrecorded_bytes_no_longer_count() {
        let m = manager();
        let q = quotas(&[(
            Some(EntityName::Default),
            None,
            QuotaKey::ConsumerByteRate,
            100.0,
        )]);
        let c = ClientRef {
            user: "u",
            client_id: "c",
        };
        let t0 = Instant::now();
        assert!(m.record(&q, QuotaKind::Fetch, c, 5000.0, t0) > Duration::ZERO);
        m.unrecord(&q, QuotaKind::Fetch, c, 5000.0, t0);
        assert_eq!(m.record(&q, QuotaKind::Fetch, c, 10.0, t0), Duration::ZERO);
    }

    #[test]
    fn mutations_are_admitted_until_the_bucket_is_below_zero() {
        let m = manager();
        let q = quotas(&[(
            Some(EntityName::Default),
            None,
            QuotaKey::ControllerMutationRate,
            1.0,
        )]);
        let c = ClientRef {
            user: "alice",
            client_id: "admin",
        };
        let t0 = Instant::now();
        // 11 tokens: 10 partitions fit, then 10 more (the bucket may go below zero).
        assert_eq!(m.mutation(&q, c, None, t0), Duration::ZERO);
        assert_eq!(m.mutation(&q, c, Some(10), t0), Duration::ZERO);
        assert_eq!(m.mutation(&q, c, None, t0), Duration::ZERO);
        assert_eq!(m.mutation(&q, c, Some(10), t0), Duration::from_secs(9));
        // Now over: the next check says how long until the bucket is back at zero.
        assert_eq!(m.mutation(&q, c, None, t0), Duration::from_secs(9));
        let other = ClientRef {
            user: "bob",
            client_id: "admin",
        };
        assert_eq!(m.mutation(&q, other, None, t0), Duration::ZERO, "per user");
    }

    #[test]
    fn sensors_are_bounded() {
        let m = manager();
        let q = quotas(&[(
            None,
            Some(EntityName::Default),
            QuotaKey::RequestPercentage,
            50.0,
        )]);
        let t0 = Instant::now();
        for i in 0..MAX_SENSORS + 10 {
            let id = format!("c{i}");
            let c = ClientRef {
                user: "u",
                client_id: &id,
            };
            m.record(&q, QuotaKind::Request, c, 1.0, t0);
        }
        assert_eq!(m.sensor_count(), MAX_SENSORS);
    }
}
