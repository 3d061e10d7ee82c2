//! One view model per page. Each is an askama template (HTML) and serialisable (the same
//! page as JSON for `Accept: application/json`).
//! One file per page, mirroring `rill-admin`'s `console/pages/` and the templates.

mod acls;
mod audit;
mod broker;
mod brokers;
mod group;
mod groups;
mod messages;
mod overview;
mod paging;
mod quotas;
pub mod reassign;
mod topic;
mod topics;
mod transactions;
mod users;

pub use acls::*;
pub use audit::*;
pub use broker::*;
pub use brokers::*;
pub use group::*;
pub use groups::*;
pub use messages::*;
pub use overview::*;
pub use paging::*;
pub use quotas::*;
pub use topic::*;
pub use topics::*;
pub use transactions::*;
pub use users::*;

use askama::Template;
use serde::Serialize;

use crate::Layout;

/// Any error page (404, 400 without a form, 500).
#[derive(Debug, Template, Serialize)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Frame.
    pub layout: Layout,
    /// HTTP status.
    pub status: u16,
    /// The field, when one is to blame.
    pub field: Option<String>,
    /// What went wrong.
    pub error: String,
}

/// `/login`.
#[derive(Debug, Template, Serialize)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Frame.
    pub layout: Layout,
    /// Where to go after logging in.
    pub next: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}
