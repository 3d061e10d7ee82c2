//! The listener's shared budgets: connection slots (`max.connections`), connections per
//! address (`max.connections.per.ip`) and request memory (`queued.max.request.bytes`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;
use crate::repeated::Repeated;

/// The Kafka listener's limits, resolved at start (see `crate::config::limits` for the keys).
#[derive(Debug, Clone)]
pub struct NetLimits {
    /// `max.connections`.
    pub max_connections: usize,
    /// `max.connections.per.ip`; `None` = unlimited.
    pub max_per_ip: Option<usize>,
    /// `connections.max.idle.ms`.
    pub idle: Duration,
    /// `socket.request.read.timeout.ms`.
    pub request_read_timeout: Duration,
    /// `socket.request.max.bytes`: the largest frame.
    pub max_frame: usize,
    /// `queued.max.request.bytes`; `None` = unbounded.
    pub request_memory: Option<usize>,
}

/// Shared by the accept loop and every connection of one listener.
pub(super) struct Admission {
    slots: Arc<Semaphore>,
    max_per_ip: Option<usize>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    memory: Option<Arc<Semaphore>>,
    metrics: Arc<Metrics>,
    /// Log lines about closed or refused connections, once per interval per reason.
    pub(super) repeated: Repeated,
}

impl Admission {
    pub(super) fn new(limits: &NetLimits, metrics: Arc<Metrics>) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            max_per_ip: limits.max_per_ip,
            per_ip: Default::default(),
            memory: limits
                .request_memory
                .map(|bytes| Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS)))),
            metrics,
            repeated: Repeated::default(),
        }
    }

    /// A connection slot, waiting while all `max.connections` are taken.
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed, so this only fails if it were.
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Counts a connection from `ip`, or `None` when that address already holds
    /// `max.connections.per.ip`. The count drops when the guard does.
    pub(super) fn enter(&self, ip: IpAddr) -> Option<PerIp> {
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if self.max_per_ip.is_some_and(|max| *n >= max) {
            if *n == 0 {
                m.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(PerIp {
            ip,
            map: self.per_ip.clone(),
        })
    }

    /// An empty share of the request-memory budget.
    pub(super) fn held(&self) -> Held {
        Held {
            permit: None,
            bytes: 0,
            metrics: self.metrics.clone(),
        }
    }

    /// Adds `bytes` to `held`, waiting while the budget is spent.
    pub(super) async fn take(&self, held: &mut Held, bytes: usize) {
        if let Some(mem) = &self.memory {
            // Chunks are at most READ_CHUNK bytes, far below u32::MAX.
            let n = u32::try_from(bytes).unwrap_or(u32::MAX);
            if let Ok(p) = mem.clone().acquire_many_owned(n).await {
                match &mut held.permit {
                    Some(h) => h.merge(p),
                    None => held.permit = Some(p),
                }
            }
        }
        held.bytes += bytes;
        self.metrics.request_bytes_queued.add(bytes as i64);
    }
}

/// One connection's count against its address.
pub(super) struct PerIp {
    ip: IpAddr,
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for PerIp {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Request bytes a connection holds; given back to the budget when dropped (after the
/// request is handled).
pub(super) struct Held {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
    metrics: Arc<Metrics>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.request_bytes_queued.sub(self.bytes as i64);
        drop(self.permit.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: Option<usize>, memory: Option<usize>) -> NetLimits {
        NetLimits {
            max_connections: 2,
            max_per_ip: per_ip,
            idle: Duration::from_secs(1),
            request_read_timeout: Duration::from_secs(1),
            max_frame: 1 << 20,
            request_memory: memory,
        }
    }

    #[test]
    fn per_ip_counts_and_releases() {
        let a = Admission::new(&limits(Some(2), None), Arc::new(Metrics::new().unwrap()));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let g1 = a.enter(ip).unwrap();
        let _g2 = a.enter(ip).unwrap();
        assert!(a.enter(ip).is_none(), "third connection from one address");
        assert!(a.enter(other).is_some(), "other addresses unaffected");
        drop(g1);
        assert!(a.enter(ip).is_some(), "a slot freed by a close");
    }

    #[tokio::test]
    async fn memory_budget_waits_and_is_given_back() {
        let m = Arc::new(Metrics::new().unwrap());
        let a = Admission::new(&limits(None, Some(100)), m.clone());
        let mut h1 = a.held();
        a.take(&mut h1, 60).await;
        assert_eq!(m.request_bytes_queued.get(), 60);
        let mut h2 = a.held();
        let waiting = tokio::time::timeout(Duration::from_millis(50), a.take(&mut h2, 60)).await;
        assert!(waiting.is_err(), "the budget is spent: reading waits");
        drop(h1);
        let mut h3 = a.held();
        tokio::time::timeout(Duration::from_secs(5), a.take(&mut h3, 60))
            .await
            .expect("budget given back when the request is done");
        drop(h3);
        drop(h2);
        assert_eq!(m.request_bytes_queued.get(), 0);
    }

    #[tokio::test]
    async fn slots_wait_at_max_connections() {
        let a = Admission::new(&limits(None, None), Arc::new(Metrics::new().unwrap()));
        let s1 = a.slot().await;
        let _s2 = a.slot().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), a.slot())
                .await
                .is_err(),
            "no third slot"
        );
        drop(s1);
        assert!(tokio::time::timeout(Duration::from_secs(5), a.slot())
            .await
            .is_ok());
    }
}
