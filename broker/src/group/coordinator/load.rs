//! Following leadership of `__consumer_offsets`: a partition this node starts leading is
//! replayed in the background (its groups answer COORDINATOR_LOAD_IN_PROGRESS meanwhile); a
//! partition no longer led is dropped with its groups.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::GroupCoordinator;
use crate::group::store::{self, OFFSETS_TOPIC};
use crate::group::txn_offsets::{self, Loaded};

impl GroupCoordinator {
    /// Follows leadership of `__consumer_offsets`: replays the partitions this node has become
    /// leader of, and drops the groups of partitions it no longer leads (their clients get
    /// NOT_COORDINATOR and find the new coordinator). Runs after every committed image, on
    /// the controller's applier; a replay (a whole partition read) runs in the background,
    /// and until it is done the partition's groups answer COORDINATOR_LOAD_IN_PROGRESS.
    pub fn on_image(self: &Arc<Self>) {
        let image = self.log.image();
        let Some(topic) = image.topics.get(OFFSETS_TOPIC) else {
            return;
        };
        let count = topic.partitions.len() as i32;
        let led: BTreeSet<i32> = (0..count)
            .filter(|i| {
                topic
                    .partitions
                    .get(*i as usize)
                    .is_some_and(|m| m.leader.0 == self.log.node.0)
            })
            .filter(|i| self.log.partition(*i).is_some_and(|p| p.is_leader()))
            .collect();
        let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
        let known: BTreeSet<i32> = loads
            .loaded
            .iter()
            .chain(loads.loading.keys())
            .copied()
            .collect();
        for lost in known.difference(&led) {
            loads.loaded.remove(lost);
            // A replay in flight for it finds its generation gone and drops what it read.
            loads.loading.remove(lost);
            loads.deferred.remove(lost);
            let n = {
                let mut groups = self.lock();
                let before = groups.len();
                groups.retain(|g, _| store::partition_for(g, count) != *lost);
                self.txn_lock().remove(lost);
                before - groups.len()
            };
            tracing::info!(
                partition = lost,
                groups = n,
                "no longer coordinating groups of this offsets partition"
            );
        }
        for won in led.difference(&known) {
            let Some(p) = self.log.partition(*won) else {
                continue;
            };
            loads.next_generation += 1;
            let generation = loads.next_generation;
            loads.loading.insert(*won, generation);
            loads.deferred.remove(won);
            let won = *won;
            if p.log_end_offset() <= p.log_start_offset() {
                // Nothing to replay (a new partition): coordinate at once.
                drop(loads);
                self.finish_load(won, generation, count, Loaded::default());
                loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let me = self.clone();
            let replay = move || {
                let groups = load_partition(&p);
                me.finish_load(won, generation, count, groups);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(replay);
                }
                // Outside a runtime (never in the broker): replay here.
                Err(_) => replay(),
            }
        }
    }

    /// Installs a finished replay, unless the partition was lost (or won again) meanwhile.
    pub(super) fn finish_load(
        &self,
        partition: i32,
        generation: u64,
        count: i32,
        mut replayed: Loaded,
    ) {
        let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
        if loads.loading.get(&partition) != Some(&generation) {
            return;
        }
        loads.loading.remove(&partition);
        for (producer, commit) in loads.deferred.remove(&partition).unwrap_or_default() {
            txn_offsets::complete(&mut replayed.groups, &mut replayed.txn, producer, commit);
        }
        let mut groups = self.lock();
        groups.retain(|g, _| store::partition_for(g, count) != partition);
        groups.extend(replayed.groups);
        if !replayed.txn.is_empty() {
            tracing::info!(
                partition,
                producers = replayed.txn.producers(),
                offsets = replayed.txn.len(),
                "transactional offset commits still pending after the load"
            );
        }
        self.txn_lock().insert(partition, replayed.txn);
        loads.loaded.insert(partition);
    }
}

/// Replays one `__consumer_offsets` partition into a fresh group map and its still-pending
/// transactional offsets.
pub(super) fn load_partition(p: &crate::replica::Partition) -> Loaded {
    let (loaded, read) = txn_offsets::replay(p.log_start_offset(), |offset, max| {
        p.read(offset, max, false, true)
    });
    if let Err(e) = read {
        tracing::error!(partition = %p.tp, error = %e, "cannot load group records");
    }
    if loaded.records > 0 {
        tracing::info!(partition = %p.tp, records = loaded.records, groups = loaded.groups.len(), "loaded group metadata and offsets");
    }
    loaded
}
