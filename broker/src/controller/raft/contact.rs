//! How long this node has been out of touch with a quorum of the metadata voters.
//!
//! A node cut off from the others cannot learn that the controller fenced it and moved its
//! leaderships away, so it must notice on its own (see `Controller::is_cut_off`). As Raft
//! leader it is in touch while a majority acknowledges it (openraft's
//! `millis_since_quorum_ack`); as follower while it knows a leader (a follower that stops
//! hearing its leader becomes a candidate after the election timeout and knows none).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{Raft, ServerState};
use tokio::sync::watch;

use super::TypeConfig;

/// The last time this node was in touch with a quorum, as a monotonic clock reading.
#[derive(Debug)]
pub(crate) struct Contact {
    base: Instant,
    /// Milliseconds after `base`.
    last_ms: AtomicU64,
    /// A quorum of one is always in touch with itself.
    solo: bool,
    /// Whether this node is the Raft leader; changes only on a change of role.
    leading: watch::Sender<bool>,
}

impl Contact {
    /// Starts tracking `raft`'s metrics (until the metrics channel closes at shutdown).
    pub(crate) fn track(raft: &Raft<TypeConfig>, solo: bool) -> Arc<Contact> {
        let contact = Arc::new(Contact {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            solo,
            leading: watch::channel(false).0,
        });
        let mut rx = raft.metrics();
        let c = contact.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                // `millis_since_quorum_ack` is as of the report: only fresh when it changes
                // (a leader reports at least every heartbeat interval).
                let fresh = tokio::select! {
                    r = rx.changed() => if r.is_err() { break } else { true },
                    _ = tick.tick() => false,
                };
                let (state, leader, acked) = {
                    let m = rx.borrow();
                    (m.state, m.current_leader, m.millis_since_quorum_ack)
                };
                c.leading
                    .send_if_modified(|l| std::mem::replace(l, state == ServerState::Leader) != *l);
                let now = Instant::now();
                let at = match state {
                    ServerState::Leader if fresh => {
                        acked.and_then(|ms| now.checked_sub(Duration::from_millis(ms)))
                    }
                    ServerState::Follower | ServerState::Learner if leader.is_some() => Some(now),
                    _ => None,
                };
                if let Some(at) = at {
                    let ms = at.saturating_duration_since(c.base).as_millis() as u64;
                    c.last_ms.fetch_max(ms, Ordering::AcqRel);
                }
            }
        });
        contact
    }

    /// Whether this node is the Raft leader, changing only when its role does.
    pub(crate) fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Time since this node was last in touch with a quorum (zero for a quorum of one).
    pub(crate) fn out_of_contact(&self) -> Duration {
        if self.solo {
            return Duration::ZERO;
        }
        let last = self.base + Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        Instant::now().saturating_duration_since(last)
    }
}
