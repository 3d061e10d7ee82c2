//! What every handler shares: the snapshot and health (`Shared`), the store, the logins,
//! the admin client, and the reassignment the console executed. Below the pages, the HTTP
//! helpers and the session middleware, which all take it; `mod.rs` builds it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rill_client::{Cluster, TopicPartition};
use tokio::sync::Mutex;

use super::auth::Auth;
use super::collector::Shared;
use super::store::Store;
use crate::ops::reassign::plan::Plan;

/// What the handlers share.
pub struct Console {
    pub(crate) shared: Arc<Shared>,
    pub(crate) auth: Option<Auth>,
    pub(crate) store: Store,
    pub(crate) admin: Cluster,
    /// The reassignment executed from the reassignment page.
    pub(crate) reassign: Active,
    /// `--broker-http`.
    pub(crate) broker_http: Vec<String>,
}

impl Console {
    /// The admin client, for changes and the few reads a page makes itself (configs, log
    /// dirs, messages). It connects on first use and heals by itself (`rill_client::Cluster`),
    /// so pages share it without a lock.
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.admin
    }
}

/// The plan last executed from this console and what the page has seen of it.
#[derive(Debug)]
pub struct Executed {
    pub(crate) plan: Plan,
    pub(crate) throttle: Option<u64>,
    /// `in-progress`, `completed`, `incomplete` or `cancelled`.
    pub(crate) status: String,
    /// Whether the end (completed or incomplete) went to the audit log.
    pub(crate) audited: bool,
    /// First size seen per adding replica, for the rate.
    pub(crate) first: BTreeMap<(TopicPartition, i32), (Instant, i64)>,
}

/// The console's reassignment state (one executed plan at a time).
pub type Active = Mutex<Option<Executed>>;
