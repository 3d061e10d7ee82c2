//! One module per page area. Each handler reads the collector's snapshot (never the
//! cluster) except where a page needs something the snapshot does not keep (a topic's
//! full configs, a broker's log dirs, messages) or makes a change.

pub mod acls;
pub mod audit;
pub mod brokers;
pub mod elect;
pub mod groups;
pub mod messages;
pub mod overview;
pub mod quotas;
pub mod reassign;
pub mod topic;
pub mod topics;
pub mod transactions;
pub mod users;

use serde::Serialize;

use super::http::ConsoleError;
use super::state::Console;

/// Writes an audit entry for a change (a store failure is logged, never hides the change's
/// own outcome).
async fn audit<T: Serialize, R>(
    console: &Console,
    action: &str,
    target: &str,
    request: &T,
    result: &Result<R, ConsoleError>,
) {
    let request = serde_json::to_string(request).unwrap_or_default();
    let outcome = match result {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    let user = super::auth::current().name;
    if let Err(e) = console
        .store
        .audit(
            &user,
            action,
            target,
            &request,
            outcome.as_ref().map(|_| ()).map_err(String::as_str),
        )
        .await
    {
        tracing::warn!(error = %e, action, target, "cannot write the audit log");
    }
}

/// After a change: wait for a collection that includes it (bounded), so the page shown
/// next reflects it.
async fn refresh(console: &Console) {
    console
        .shared
        .refresh(std::time::Duration::from_secs(5))
        .await;
}
