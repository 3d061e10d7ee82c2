//! ISR changes from partition leaders, batched into few metadata entries (Kafka's
//! AlterPartitionManager sends one AlterPartition request for many partitions the same way).
//!
//! When a broker comes back after a failure, the leaders of every partition it replicates
//! ask to add it to the ISR at about the same moment: tens of thousands of changes at scale.
//! One entry each made the restarted node wait minutes to be back in every ISR; here every
//! change waiting when the drainer wakes goes into one `ChangePartitions` entry (up to
//! `MAX_CHANGES_PER_ENTRY`), each still checked on its own (leader, epochs, eligibility) and
//! applied as its own compare-and-set. A change that may complete a reassignment takes the
//! single path (`commit_isr_change`), which completes it.
//!
//! Bounds: a leader has at most one ISR change in flight per partition
//! (`Partition::isr_change_done`), so the queue never holds more than the partitions this
//! node leads.

use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{oneshot, Notify};

use super::raft::command::{PartitionChange, MAX_CHANGES_PER_ENTRY};
use super::Controller;
use crate::error::KafkaError;
use crate::metadata::PartitionMeta;
use crate::types::{BrokerId, LeaderEpoch};

/// A leader's request to change one partition's ISR (AlterPartition's fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrRequest {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The leader asking.
    pub leader: BrokerId,
    /// Its leader epoch.
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch it saw.
    pub partition_epoch: i32,
    /// The ISR it wants.
    pub isr: Vec<BrokerId>,
}

type Reply = oneshot::Sender<Result<PartitionMeta, KafkaError>>;

/// Changes waiting for the drainer.
#[derive(Default)]
pub(super) struct IsrQueue {
    pending: Mutex<Vec<(IsrRequest, Reply)>>,
    wake: Notify,
}

impl IsrQueue {
    /// Queues `req`; the answer arrives on the returned receiver.
    pub(super) fn push(
        &self,
        req: IsrRequest,
    ) -> oneshot::Receiver<Result<PartitionMeta, KafkaError>> {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((req, tx));
        self.wake.notify_one();
        rx
    }

    fn take(&self, max: usize) -> Vec<(IsrRequest, Reply)> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let n = pending.len().min(max);
        pending.drain(..n).collect()
    }
}

/// The drainer: whenever changes wait, proposes them in batches until none is left.
pub(super) fn spawn_drainer(c: &Arc<Controller>) {
    let queue = c.isr_queue.clone();
    let weak: Weak<Controller> = Arc::downgrade(c);
    tokio::spawn(async move {
        loop {
            queue.wake.notified().await;
            loop {
                let batch = queue.take(MAX_CHANGES_PER_ENTRY);
                if batch.is_empty() {
                    break;
                }
                let Some(c) = weak.upgrade() else { return };
                c.commit_isr_batch(batch).await;
            }
        }
    });
}

impl Controller {
    /// Checks each queued change, proposes the valid ones together and answers each caller.
    async fn commit_isr_batch(&self, batch: Vec<(IsrRequest, Reply)>) {
        let image = self.image();
        let mut together: Vec<(PartitionChange, Reply)> = Vec::with_capacity(batch.len());
        for (req, reply) in batch {
            let state = match self.isr_state(&image, &req) {
                Ok(s) => s,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    continue;
                }
            };
            if image.reassignment(&req.topic, req.partition).is_some() {
                // May complete the reassignment: the single path knows how.
                let r = self
                    .commit_isr_change(&req.topic, req.partition, state)
                    .await;
                let _ = reply.send(r);
                continue;
            }
            together.push((
                PartitionChange {
                    topic: req.topic,
                    partition: req.partition,
                    state,
                },
                reply,
            ));
        }
        if together.is_empty() {
            return;
        }
        let (changes, replies): (Vec<PartitionChange>, Vec<Reply>) = together.into_iter().unzip();
        match self.change_partitions(changes.clone()).await {
            Ok(refused) => {
                for (i, (change, reply)) in changes.into_iter().zip(replies).enumerate() {
                    let r = if refused.contains(&i) {
                        Err(KafkaError::InvalidRequest(format!(
                            "{}-{}: the partition changed meanwhile; the ISR change is stale",
                            change.topic, change.partition
                        )))
                    } else {
                        Ok(change.state)
                    };
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                // Not committed (no quorum, leadership moved): every leader retries after its
                // pause; the message says why.
                let why = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(KafkaError::NotController(why.clone())));
                }
            }
        }
    }
}
