//! The coordinator's background work: open transactions past their timeout are aborted (their
//! producer fenced) and ids idle for `transactional.id.expiration.ms` are removed.

use std::sync::Arc;
use std::time::Duration;

use super::{Owner, TxnCoordinator};
use crate::time::now_ms;
use crate::txn::state::{self, TxnResult};
use crate::types::CoordinatorEpoch;

impl TxnCoordinator {
    /// Aborts the transactions open past their timeout, fencing their producers.
    pub async fn abort_timed_out(self: &Arc<Self>) {
        let now = now_ms();
        let candidates: Vec<(i32, CoordinatorEpoch, state::TimedOut)> = {
            let state = self.lock();
            state
                .loaded
                .iter()
                .flat_map(|(i, p)| {
                    state::timed_out(p.ids.values(), now)
                        .into_iter()
                        .map(|t| (*i, p.coordinator_epoch, t))
                })
                .collect()
        };
        for (partition, epoch, t) in candidates {
            let Some(log) = self.log.partition(partition) else {
                continue;
            };
            let o = Owner {
                partition,
                log,
                epoch,
            };
            let id = t.transactional_id.as_str();
            let written = self.prepare(&o, id, |p| match p.ids.get_mut(id) {
                Some(m) => m.prepare_timeout_abort(t.producer_id, now).map(Some),
                None => Ok(None),
            });
            let (transit, w) = match written {
                Ok(Some(x)) => x,
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(transactional_id = id, error = %e, "timed-out transaction not aborted now");
                    continue;
                }
            };
            tracing::info!(transactional_id = id, producer_id = t.producer_id.0, "aborting a transaction open past its transaction.timeout.ms; its producer is fenced");
            if let Err(e) = self.persist(&o, id, &transit, w).await {
                tracing::warn!(transactional_id = id, error = %e, "cannot write the abort of a timed-out transaction");
                continue;
            }
            if let Err(e) = self.complete_transaction(&o, id, TxnResult::Abort) {
                tracing::warn!(transactional_id = id, error = %e, "cannot finish the abort of a timed-out transaction");
            }
        }
    }

    /// Removes ids idle for `transactional.id.expiration.ms` (a tombstone each).
    pub async fn expire_ids(&self) {
        let now = now_ms();
        let candidates: Vec<(i32, CoordinatorEpoch, String)> = {
            let state = self.lock();
            state
                .loaded
                .iter()
                .flat_map(|(i, p)| {
                    state::expired(p.ids.values(), now, self.config.id_expiration_ms)
                        .into_iter()
                        .map(|id| (*i, p.coordinator_epoch, id.to_string()))
                })
                .collect()
        };
        for (partition, epoch, id) in candidates {
            let Some(log) = self.log.partition(partition) else {
                continue;
            };
            let o = Owner {
                partition,
                log,
                epoch,
            };
            let written = self.prepare(&o, &id, |p| match p.ids.get_mut(&id) {
                Some(m) if m.is_expired(now, self.config.id_expiration_ms) => {
                    m.prepare_dead().map(Some)
                }
                _ => Ok(None),
            });
            if let Ok(Some((t, w))) = written {
                match self.persist(&o, &id, &t, w).await {
                    Ok(()) => tracing::info!(transactional_id = %id, "transactional id expired"),
                    Err(e) => {
                        tracing::debug!(transactional_id = %id, error = %e, "expiry not written")
                    }
                }
            }
        }
    }

    /// The background work: timed-out transactions aborted every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, idle ids expired every
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub async fn run(self: Arc<Self>) {
        let mut abort = tokio::time::interval(Duration::from_millis(
            self.config.abort_timed_out_interval_ms.max(1) as u64,
        ));
        let mut expire = tokio::time::interval(Duration::from_millis(
            self.config.remove_expired_interval_ms.max(1) as u64,
        ));
        abort.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        expire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = abort.tick() => self.abort_timed_out().await,
                _ = expire.tick() => self.expire_ids().await,
            }
        }
    }
}
