//! The replicated state machine (openraft's [`RaftStateMachine`]): the [`MetadataImage`] the
//! committed log produces, plus the table of recent proposal ids that makes retried proposals
//! apply once.
//!
//! The state machine is not persisted on every apply: it is rebuilt at start from the latest
//! snapshot, and openraft re-applies the committed log after it. Snapshots (`snapshot.json` in
//! the quorum directory: `{"meta": SnapshotMeta, "data": SnapshotPayload}`) are written
//! atomically (tmp, fsync, rename, fsync dir). The bytes a leader sends to a lagging follower
//! are the JSON of [`SnapshotPayload`].

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use super::command::{apply_command, CommandResponse, CommandResult};
use super::log_store::{read_json, write_atomic};
use super::{NodeId, TypeConfig};
use crate::metadata::image::MetadataImage;
use crate::types::BrokerId;

/// How many recent proposal ids (and their responses) the state machine remembers for
/// de-duplicating retried proposals.
pub const DEDUP_WINDOW: usize = 4096;

/// Producer ids handed out by a fresh cluster start here (as the local controller did).
pub const FIRST_PRODUCER_ID: i64 = 1000;

const SNAPSHOT_FILE: &str = "snapshot.json";

type Res<T> = Result<T, StorageError<NodeId>>;

/// Everything a snapshot carries besides openraft's own metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotPayload {
    /// The metadata image at the snapshot's last log id.
    pub image: MetadataImage,
    /// Recent proposal ids and their responses, oldest first.
    #[serde(default)]
    pub recent: Vec<(Uuid, CommandResponse)>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: SnapshotPayload,
}

#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// Bounded memory of responses by proposal id, evicted oldest first (deterministically: the
/// same on every replica).
#[derive(Debug, Default, Clone)]
struct Dedup {
    order: VecDeque<Uuid>,
    responses: BTreeMap<Uuid, CommandResponse>,
}

impl Dedup {
    fn from_recent(recent: Vec<(Uuid, CommandResponse)>) -> Dedup {
        let mut d = Dedup::default();
        for (id, r) in recent {
            d.remember(id, r);
        }
        d
    }

    fn get(&self, id: &Uuid) -> Option<&CommandResponse> {
        self.responses.get(id)
    }

    fn remember(&mut self, id: Uuid, r: CommandResponse) {
        if self.responses.insert(id, r).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.responses.remove(&old);
            }
        }
    }

    fn recent(&self) -> Vec<(Uuid, CommandResponse)> {
        self.order
            .iter()
            .filter_map(|id| self.responses.get(id).map(|r| (*id, r.clone())))
            .collect()
    }
}

/// The state machine, owned by openraft's state-machine worker.
pub(crate) struct StateMachineStore {
    dir: PathBuf,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    image: MetadataImage,
    dedup: Dedup,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    publish: watch::Sender<Arc<MetadataImage>>,
    snapshot_seq: Arc<AtomicU64>,
}

impl StateMachineStore {
    /// Loads the latest snapshot from `dir` (if any). Returns the store and the receiver of
    /// published images.
    pub(crate) fn open(
        dir: &Path,
    ) -> io::Result<(StateMachineStore, watch::Receiver<Arc<MetadataImage>>)> {
        let path = dir.join(SNAPSHOT_FILE);
        let loaded: Option<SnapshotFile> = read_json(&path)?;
        let (current, last_applied, membership, image, dedup) = match loaded {
            Some(f) => {
                let data = serde_json::to_vec(&f.data).map_err(io::Error::other)?;
                tracing::info!(snapshot = %f.meta, "loaded metadata snapshot");
                (
                    Some(StoredSnapshot {
                        meta: f.meta.clone(),
                        data,
                    }),
                    f.meta.last_log_id,
                    f.meta.last_membership.clone(),
                    f.data.image,
                    Dedup::from_recent(f.data.recent),
                )
            }
            None => (
                None,
                None,
                StoredMembership::default(),
                MetadataImage {
                    next_producer_id: FIRST_PRODUCER_ID,
                    ..Default::default()
                },
                Dedup::default(),
            ),
        };
        let (publish, rx) = watch::channel(Arc::new(image.clone()));
        Ok((
            StateMachineStore {
                dir: dir.to_path_buf(),
                last_applied,
                membership,
                image,
                dedup,
                current: Arc::new(Mutex::new(current)),
                publish,
                snapshot_seq: Arc::new(AtomicU64::new(0)),
            },
            rx,
        ))
    }

    fn payload(&self) -> SnapshotPayload {
        SnapshotPayload {
            image: self.image.clone(),
            recent: self.dedup.recent(),
        }
    }

    fn publish(&self) {
        self.publish.send_replace(Arc::new(self.image.clone()));
    }
}

/// Serializes the snapshot file and installs it as the current snapshot unless a newer one is
/// already current.
fn persist_snapshot(
    dir: &Path,
    current: &Mutex<Option<StoredSnapshot>>,
    meta: &SnapshotMeta<NodeId, BasicNode>,
    payload: &SnapshotPayload,
) -> io::Result<Vec<u8>> {
    // The payload is serialized once: the file is `{"meta":..,"data":<payload>}` around
    // the same bytes openraft sends to followers (at 100,000 partitions, tens of MB).
    let data = serde_json::to_vec(payload).map_err(io::Error::other)?;
    let meta_json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    let mut file = Vec::with_capacity(data.len() + meta_json.len() + 20);
    file.extend_from_slice(b"{\"meta\":");
    file.extend_from_slice(&meta_json);
    file.extend_from_slice(b",\"data\":");
    file.extend_from_slice(&data);
    file.push(b'}');
    debug_assert!(
        serde_json::from_slice::<SnapshotFile>(&file).is_ok(),
        "the snapshot file reads back"
    );
    let mut cur = current.lock().unwrap_or_else(|p| p.into_inner());
    if cur
        .as_ref()
        .is_some_and(|c| c.meta.last_log_id > meta.last_log_id)
    {
        tracing::debug!(snapshot = %meta, "a newer snapshot is already current");
        return Ok(data);
    }
    write_atomic(&dir.join(SNAPSHOT_FILE), &file, true)?;
    *cur = Some(StoredSnapshot {
        meta: meta.clone(),
        data: data.clone(),
    });
    Ok(data)
}

/// Builds a snapshot from a copy of the state taken when openraft asked for a builder.
pub(crate) struct SnapshotBuilder {
    dir: PathBuf,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    payload: SnapshotPayload,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Res<Snapshot<TypeConfig>> {
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        // Serializing and fsyncing a large image takes a while: on a blocking thread, not a
        // runtime worker that request handlers share.
        let started = std::time::Instant::now();
        let (dir, current, payload) = (
            self.dir.clone(),
            self.current.clone(),
            std::mem::take(&mut self.payload),
        );
        let m = meta.clone();
        let data =
            tokio::task::spawn_blocking(move || persist_snapshot(&dir, &current, &m, &payload))
                .await
                .map_err(io::Error::other)
                .and_then(|r| r)
                .map_err(|e| {
                    StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
                })?;
        tracing::info!(
            snapshot = %meta,
            bytes = data.len(),
            ms = started.elapsed().as_millis() as u64,
            "built metadata snapshot"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Res<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Res<Vec<CommandResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            debug_assert!(
                self.last_applied
                    .is_none_or(|l| l.index < entry.log_id.index),
                "entries are applied once each, in log order"
            );
            self.last_applied = Some(entry.log_id);
            self.image.version = entry.log_id.index;
            // The leader that wrote an entry is the active controller as of that entry: the
            // same on every replica.
            let leader = entry.log_id.leader_id.node_id;
            self.image.controller_id = BrokerId(i32::try_from(leader).unwrap_or(-1));
            let resp = match entry.payload {
                EntryPayload::Blank => Ok(CommandResult::Done),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    Ok(CommandResult::Done)
                }
                EntryPayload::Normal(p) => match self.dedup.get(&p.id) {
                    Some(r) => {
                        tracing::debug!(proposal = %p.id, "duplicate proposal, answering the first outcome");
                        r.clone()
                    }
                    None => {
                        let r = apply_command(&mut self.image, &p.command);
                        if let Err(e) = &r {
                            tracing::debug!(proposal = %p.id, error = %e, "metadata command refused");
                        }
                        self.dedup.remember(p.id, r.clone());
                        r
                    }
                },
            };
            out.push(resp);
        }
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            payload: self.payload(),
            current: self.current.clone(),
            seq: self.snapshot_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Res<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Res<()> {
        let bytes = snapshot.into_inner();
        let payload: SnapshotPayload = serde_json::from_slice(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        persist_snapshot(&self.dir, &self.current, meta, &payload).map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        tracing::info!(snapshot = %meta, bytes = bytes.len(), "installed metadata snapshot");
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.image = payload.image;
        self.dedup = Dedup::from_recent(payload.recent);
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Res<Option<Snapshot<TypeConfig>>> {
        let cur = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(cur.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::raft::command::{MetadataCommand, Proposal};
    use openraft::{CommittedLeaderId, Membership};
    use std::collections::BTreeSet;

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 2), index),
            payload,
        }
    }

    fn alloc(id: u128) -> EntryPayload<TypeConfig> {
        EntryPayload::Normal(Proposal {
            id: Uuid::from_u128(id),
            command: MetadataCommand::AllocateProducerIds { count: 10 },
        })
    }

    #[tokio::test]
    async fn applies_dedups_snapshots_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sm, mut rx) = StateMachineStore::open(dir.path()).expect("open");
        let members = Membership::new(
            vec![BTreeSet::from([2u64])],
            BTreeMap::from([(2u64, BasicNode::new("a:1"))]),
        );
        let out = sm
            .apply(vec![
                entry(0, EntryPayload::Membership(members)),
                entry(1, EntryPayload::Blank),
                entry(2, alloc(1)),
                entry(3, alloc(1)),
                entry(4, alloc(2)),
            ])
            .await
            .expect("apply");
        assert_eq!(out[2], Ok(CommandResult::ProducerIds { first: 1000 }));
        assert_eq!(out[3], out[2], "a retried proposal gets the first outcome");
        assert_eq!(out[4], Ok(CommandResult::ProducerIds { first: 1010 }));
        assert!(rx.has_changed().expect("sender alive"));
        let img = rx.borrow_and_update().clone();
        assert_eq!(img.next_producer_id, 1020);
        assert_eq!(img.controller_id, BrokerId(2));

        let mut b = sm.get_snapshot_builder().await;
        let snap = b.build_snapshot().await.expect("build");
        assert_eq!(snap.meta.last_log_id.map(|l| l.index), Some(4));
        drop(sm);

        let (mut sm, rx) = StateMachineStore::open(dir.path()).expect("reopen");
        let (applied, membership) = sm.applied_state().await.expect("state");
        assert_eq!(applied.map(|l| l.index), Some(4));
        assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![2]);
        assert_eq!(rx.borrow().next_producer_id, 1020);
        let out = sm.apply(vec![entry(5, alloc(1))]).await.expect("apply");
        assert_eq!(
            out[0],
            Ok(CommandResult::ProducerIds { first: 1000 }),
            "dedup survives a snapshot"
        );

        // Install the snapshot on a fresh state machine, as a lagging follower would.
        let other = tempfile::tempdir().expect("tempdir");
        let (mut f, frx) = StateMachineStore::open(other.path()).expect("open follower");
        let current = sm
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("some");
        f.install_snapshot(&current.meta, current.snapshot)
            .await
            .expect("install");
        assert_eq!(frx.borrow().next_producer_id, 1020);
        assert_eq!(
            f.applied_state().await.expect("state").0.map(|l| l.index),
            Some(4)
        );
        assert!(f
            .install_snapshot(&current.meta, Box::new(Cursor::new(b"junk".to_vec())))
            .await
            .is_err());
    }

    #[test]
    fn dedup_window_is_bounded() {
        let mut d = Dedup::default();
        for i in 0..(DEDUP_WINDOW as u128 + 10) {
            d.remember(Uuid::from_u128(i), Ok(CommandResult::Done));
        }
        assert_eq!(d.order.len(), DEDUP_WINDOW);
        assert_eq!(d.responses.len(), DEDUP_WINDOW);
        assert!(d.get(&Uuid::from_u128(0)).is_none());
        assert!(d.get(&Uuid::from_u128(DEDUP_WINDOW as u128 + 9)).is_some());
    }
}
