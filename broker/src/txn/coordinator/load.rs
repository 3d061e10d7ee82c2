//! Following leadership of `__transaction_state`: a partition this node starts leading is
//! replayed in the background (its ids answer COORDINATOR_LOAD_IN_PROGRESS meanwhile), and the
//! transactions it left in a Prepare state are finished; a partition no longer led is dropped
//! with its ids (the new leader finishes what was in flight).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{Owner, TxnCoordinator, TxnPartition};
use crate::replica::Partition;
use crate::txn::state::{TxnMetadata, TxnResult, TxnState};
use crate::txn::store::{self, TRANSACTION_STATE_TOPIC};
use crate::types::{CoordinatorEpoch, Offset};

impl TxnCoordinator {
    /// Follows leadership of `__transaction_state` after every committed image: replays newly
    /// led partitions in the background, drops the ids of partitions no longer led.
    pub fn on_image(self: &Arc<Self>) {
        let image = self.log.image();
        let Some(topic) = image.topics.get(TRANSACTION_STATE_TOPIC) else {
            return;
        };
        let count = topic.partitions.len() as i32;
        let led: BTreeSet<i32> = (0..count)
            .filter(|i| {
                topic
                    .partitions
                    .get(*i as usize)
                    .is_some_and(|m| m.leader == self.log.node)
            })
            .filter(|i| self.log.partition(*i).is_some_and(|p| p.is_leader()))
            .collect();
        let mut state = self.lock();
        let known: BTreeSet<i32> = state
            .loaded
            .keys()
            .chain(state.loading.keys())
            .copied()
            .collect();
        // A partition led again in a newer epoch (lost and won between two images) reloads.
        let stale: Vec<i32> = state
            .loaded
            .iter()
            .filter(|(i, p)| {
                self.log
                    .partition(**i)
                    .is_some_and(|l| l.leader_epoch().0 != p.coordinator_epoch.0)
            })
            .map(|(i, _)| *i)
            .collect();
        for lost in known.difference(&led).chain(stale.iter()) {
            let ids = state.loaded.remove(lost).map_or(0, |p| p.ids.len());
            state.loading.remove(lost);
            tracing::info!(
                partition = lost,
                ids = ids,
                "no longer coordinating the transactional ids of this partition"
            );
        }
        let known: BTreeSet<i32> = state
            .loaded
            .keys()
            .chain(state.loading.keys())
            .copied()
            .collect();
        for won in led.difference(&known) {
            let Some(p) = self.log.partition(*won) else {
                continue;
            };
            state.next_generation += 1;
            let generation = state.next_generation;
            state.loading.insert(*won, generation);
            let me = self.clone();
            let won = *won;
            let replay = move || {
                let epoch = CoordinatorEpoch(p.leader_epoch().0);
                let ids = load_partition(&p);
                me.finish_load(won, generation, epoch, ids);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(replay);
                }
                Err(_) => replay(),
            }
        }
    }

    /// Installs a replay unless the partition was lost meanwhile, then finishes every
    /// transaction it left in a Prepare state.
    fn finish_load(
        self: &Arc<Self>,
        partition: i32,
        generation: u64,
        epoch: CoordinatorEpoch,
        ids: HashMap<String, TxnMetadata>,
    ) {
        let prepared: Vec<(String, TxnResult)> = ids
            .values()
            .filter_map(|m| match m.state {
                TxnState::PrepareCommit => Some((m.transactional_id.clone(), TxnResult::Commit)),
                TxnState::PrepareAbort => Some((m.transactional_id.clone(), TxnResult::Abort)),
                _ => None,
            })
            .collect();
        let Some(log) = self.log.partition(partition) else {
            return;
        };
        {
            let mut state = self.lock();
            if state.loading.get(&partition) != Some(&generation) {
                return;
            }
            state.loading.remove(&partition);
            tracing::info!(
                partition,
                ids = ids.len(),
                coordinator_epoch = epoch.0,
                "coordinating the transactional ids of this partition"
            );
            state.loaded.insert(
                partition,
                TxnPartition {
                    coordinator_epoch: epoch,
                    ids,
                },
            );
        }
        let o = Owner {
            partition,
            log,
            epoch,
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let _guard = rt.enter();
        for (id, result) in prepared {
            if let Err(e) = self.complete_transaction(&o, &id, result) {
                tracing::warn!(transactional_id = %id, error = %e, "cannot finish a loaded transaction");
            }
        }
    }
}

/// Replays one `__transaction_state` partition (blocking reads): the last record of each id
/// wins, a tombstone removes it. Records that do not decode are skipped with a warning, so a
/// damaged or foreign record never stops the load.
fn load_partition(p: &Partition) -> HashMap<String, TxnMetadata> {
    let mut ids = HashMap::new();
    let mut offset = p.log_start_offset();
    let mut records = 0usize;
    loop {
        let r = match p.read(offset, 4 << 20, false, true) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(partition = %p.tp, error = %e, "cannot load transaction state");
                break;
            }
        };
        if r.records.is_empty() {
            break;
        }
        let mut rest = &r.records[..];
        let mut next = offset;
        while !rest.is_empty() {
            let h = match crate::log::batch::BatchHeader::parse(rest) {
                Ok(h) if h.total_size() > 0 && h.total_size() <= rest.len() => h,
                _ => break,
            };
            let batch = &rest[..h.total_size()];
            rest = &rest[h.total_size()..];
            next = Offset(h.last_offset() + 1);
            if h.is_control() {
                continue;
            }
            let set = match rill_client::records::decode_batch(batch) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(partition = %p.tp, offset = h.base_offset, error = %e, "undecodable batch in __transaction_state skipped");
                    continue;
                }
            };
            for rec in set.records {
                let Some(key) = rec.key.as_deref() else {
                    continue;
                };
                match store::decode_record(key, rec.value.as_deref()) {
                    Ok(Some(store::TxnRecord {
                        transactional_id,
                        value: Some(v),
                    })) => match v.into_metadata(&transactional_id) {
                        Ok(m) => {
                            records += 1;
                            ids.insert(transactional_id, m);
                        }
                        Err(e) => {
                            tracing::warn!(partition = %p.tp, offset = rec.offset, error = %e, "unreadable transaction state skipped")
                        }
                    },
                    Ok(Some(store::TxnRecord {
                        transactional_id,
                        value: None,
                    })) => {
                        records += 1;
                        ids.remove(&transactional_id);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(partition = %p.tp, offset = rec.offset, error = %e, "unreadable transaction state record skipped")
                    }
                }
            }
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    if records > 0 {
        tracing::info!(partition = %p.tp, records, ids = ids.len(), "loaded transaction state");
    }
    ids
}
