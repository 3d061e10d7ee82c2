//! ISR maintenance on the leader (KIP-497's spirit): a follower that caught up joins the ISR,
//! one that has not caught up for `replica.lag.time.max.ms` leaves it. Changes go to the
//! controller as a compare-and-set on the partition epoch (`Controller::alter_partition_isr`)
//! and take effect only once committed: the leader keeps using the ISR of the committed image
//! (for the high watermark and `min.insync.replicas`) until the new image arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::partition::IsrChange;
use super::Partition;
use super::ReplicaManager;
use crate::controller::Controller;

/// Sends `change` to the controller in the background; the partition may propose again once
/// it is settled (at once after success, after a short pause after a failure).
pub fn propose(controller: Arc<Controller>, p: Arc<Partition>, change: IsrChange) {
    tokio::spawn(async move {
        let r = controller
            .alter_partition_isr(
                &p.tp.topic,
                p.tp.partition,
                change.leader,
                change.leader_epoch,
                change.partition_epoch,
                change.isr.clone(),
            )
            .await;
        match &r {
            Ok(_) => {
                // Per partition at debug: a broker death changes thousands at once; the
                // ISR shrink/expand counters and the controller's summary line count them.
                tracing::debug!(partition = %p.tp, isr = ?change.isr, "ISR change committed")
            }
            Err(e) => {
                tracing::debug!(partition = %p.tp, isr = ?change.isr, error = %e, "ISR change refused")
            }
        }
        p.isr_change_done(r.is_ok());
    });
}

/// How often the leader looks for followers to drop from the ISR: Kafka checks every half
/// lag time; a shorter period (capped at 500 ms) drops them closer to the limit.
pub fn check_interval(lag_max: Duration) -> Duration {
    (lag_max / 2).clamp(Duration::from_millis(10), Duration::from_millis(500))
}

/// The leader's ISR shrink loop: every [`check_interval`], each led partition drops the
/// followers that have not caught up within `replica.lag.time.max.ms`.
pub async fn run(replicas: Arc<ReplicaManager>, controller: Arc<Controller>, lag: Duration) {
    let mut tick = tokio::time::interval(check_interval(lag));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        for p in replicas.all() {
            if let Some(change) = p.shrink_candidate(now, lag) {
                propose(controller.clone(), p, change);
            }
        }
    }
}
