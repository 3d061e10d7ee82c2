//! The console's presentation: view models (plain data, serialisable, so the same value
//! renders as HTML through askama or as JSON), the askama templates in `templates/`, and
//! the static CSS/JS in `assets/` embedded with rust-embed. No logic that talks to a
//! cluster or a database lives here.

pub mod assets;
pub mod format;
pub mod model;
pub use views::reassign;
pub mod views;

use std::collections::BTreeMap;

use serde::Serialize;

/// What every page shows around its content.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Layout {
    /// Page title.
    pub title: String,
    /// Which nav entry is active (`overview`, `topics`, `groups`, `brokers`, `audit`).
    pub nav: String,
    /// Set when the cluster could not be reached: shown on every page.
    pub banner: Option<String>,
    /// Cluster id, when known.
    pub cluster_id: Option<String>,
    /// When the data shown was collected, ms since the epoch (0 = nothing yet).
    pub collected_at_ms: i64,
    /// Parts of the last collection that failed.
    pub warnings: Vec<String>,
    /// A one-line result of the last action (after a redirect).
    pub notice: Option<String>,
    /// The logged-in user, when logins are on.
    pub user: Option<String>,
    /// The user's role, when logins are on.
    pub role: Option<String>,
    /// The CSRF token every form carries (empty when logins are off).
    #[serde(skip_serializing)]
    pub csrf_token: String,
}

impl Layout {
    /// The collection time for people.
    pub fn collected_at(&self) -> String {
        if self.collected_at_ms == 0 {
            "never".into()
        } else {
            format::time(self.collected_at_ms)
        }
    }
}

/// A validation error tied to one field of one form.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// Form id without the `-form` suffix (`create-topic`, `alter-config`, ...).
    pub form: String,
    /// Field name (`name`, `partitions`, ...), or empty for the form as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A submitted form re-shown after an error: the values typed and the error.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FormState {
    /// The values as submitted, by field name.
    pub values: BTreeMap<String, String>,
    /// The error, if any.
    pub error: Option<FieldError>,
}

impl FormState {
    /// The error message for `field` of `form`, if that is what failed.
    pub fn err(&self, form: &str, field: &str) -> Option<&str> {
        self.error
            .as_ref()
            .filter(|e| e.form == form && e.field == field)
            .map(|e| e.message.as_str())
    }

    /// The submitted value of `field` of `form` (empty when another form was submitted).
    pub fn value(&self, form: &str, field: &str) -> &str {
        match &self.error {
            Some(e) if e.form == form => self.values.get(field).map_or("", String::as_str),
            _ => "",
        }
    }
}
