//! `/acls`: the cluster's ACLs (filtered), the create form, a two-step delete, and "what may
//! principal P do on resource R".

use askama::Template;
use serde::Serialize;

use crate::{FormState, Layout};

/// One ACL, its enums as Kafka names them (`TOPIC`, `LITERAL`, `READ`, `ALLOW`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AclRow {
    /// `TOPIC`, `GROUP`, `CLUSTER`, `TRANSACTIONAL_ID`.
    pub resource_type: String,
    /// Resource name or prefix.
    pub resource_name: String,
    /// `LITERAL` or `PREFIXED`.
    pub pattern_type: String,
    /// `User:alice`.
    pub principal: String,
    /// Host or `*`.
    pub host: String,
    /// `READ`, `WRITE`, ...
    pub operation: String,
    /// `ALLOW` or `DENY`.
    pub permission: String,
}

impl AclRow {
    /// True for DENY rows (styled apart).
    pub fn is_deny(&self) -> bool {
        self.permission == "DENY"
    }
}

/// The list's filters as submitted (empty or `any` = no filter).
#[derive(Debug, Clone, Serialize, Default)]
pub struct AclQuery {
    /// Principal, exact (`User:alice`) or a substring.
    pub principal: String,
    /// `any`, `topic`, `group`, `cluster`, `transactional_id`.
    pub resource_type: String,
    /// Substring of the resource name.
    pub resource: String,
    /// `any` or an operation (`read`, ...).
    pub operation: String,
    /// `any`, `allow`, `deny`.
    pub permission: String,
}

impl AclQuery {
    /// The resource types offered (`any` first).
    pub const RESOURCE_TYPES: [&'static str; 5] =
        ["any", "topic", "group", "cluster", "transactional_id"];
    /// The operations offered (`any` first; `all` last, so it is never the form's default).
    pub const OPERATIONS: [&'static str; 12] = [
        "any",
        "read",
        "write",
        "create",
        "delete",
        "alter",
        "describe",
        "cluster_action",
        "describe_configs",
        "alter_configs",
        "idempotent_write",
        "all",
    ];
    /// The resource types an ACL can name.
    pub const CONCRETE_TYPES: [&'static str; 4] = ["topic", "group", "cluster", "transactional_id"];
    /// The operations an ACL can name (`any` is for filters only).
    pub fn concrete_operations() -> &'static [&'static str] {
        &Self::OPERATIONS[1..]
    }
    /// The permissions offered.
    pub const PERMISSIONS: [&'static str; 3] = ["any", "allow", "deny"];

    /// True when `t` is the resource type filtered on.
    pub fn type_is(&self, t: &str) -> bool {
        self.resource_type == t
    }

    /// True when `o` is the operation filtered on.
    pub fn operation_is(&self, o: &str) -> bool {
        self.operation == o
    }

    /// True when `p` is the permission filtered on.
    pub fn permission_is(&self, p: &str) -> bool {
        self.permission == p
    }
}

/// One operation's answer in a permission check.
#[derive(Debug, Clone, Serialize)]
pub struct AclCheckRow {
    /// The operation (`READ`, ...).
    pub operation: String,
    /// Allowed or not; `None` when it could not be worked out (see the check's note).
    pub allowed: Option<bool>,
    /// Why: the deciding ACL, super user, or no ACL found.
    pub reason: String,
}

impl AclCheckRow {
    /// `allowed`, `denied` or `unknown`.
    pub fn verdict(&self) -> &'static str {
        match self.allowed {
            Some(true) => "allowed",
            Some(false) => "denied",
            None => "unknown",
        }
    }
}

/// "What may `principal` do on `resource`": every operation of the resource type.
#[derive(Debug, Clone, Serialize)]
pub struct AclCheck {
    /// The principal asked about.
    pub principal: String,
    /// The resource type (`topic`, ...).
    pub resource_type: String,
    /// The resource name.
    pub resource: String,
    /// The client host the answer is for (`*`-only ACLs apply to any).
    pub host: String,
    /// One row per operation.
    pub rows: Vec<AclCheckRow>,
    /// Where the settings came from, or why part of the answer is unknown.
    pub note: String,
}

/// `/acls`.
#[derive(Debug, Template, Serialize)]
#[template(path = "acls.html")]
pub struct AclsPage {
    /// Frame.
    pub layout: Layout,
    /// Filters.
    pub query: AclQuery,
    /// Matching ACLs (at most [`AclsPage::MAX_ROWS`]).
    pub acls: Vec<AclRow>,
    /// Matching ACLs before the row cap.
    pub matching: usize,
    /// Every ACL of the cluster.
    pub total: usize,
    /// Why the ACLs could not be listed (no authorizer, not authorized, unreachable).
    pub error: Option<String>,
    /// The answer of the permission check, when one was asked.
    pub check: Option<AclCheck>,
    /// The check form's values (kept after it ran).
    pub check_query: AclCheckQuery,
    /// An ACL awaiting the delete confirmation.
    pub pending_delete: Option<AclRow>,
    /// The create form after an error.
    pub form: FormState,
}

impl AclsPage {
    /// Rows rendered at most (the count says how many more match).
    pub const MAX_ROWS: usize = 1000;

    /// True when the create form was re-shown with `value` in `field`.
    pub fn create_is(&self, field: &str, value: &str) -> bool {
        self.form.value("create-acl", field) == value
    }
}

/// The permission check form's values.
#[derive(Debug, Clone, Serialize, Default)]
pub struct AclCheckQuery {
    /// Principal.
    pub principal: String,
    /// `topic`, `group`, `cluster`, `transactional_id`.
    pub resource_type: String,
    /// Resource name.
    pub resource: String,
    /// Client host (empty = any host).
    pub host: String,
}

impl AclCheckQuery {
    /// True when `t` is the resource type asked about.
    pub fn type_is(&self, t: &str) -> bool {
        self.resource_type == t
    }
}
