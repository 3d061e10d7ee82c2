//! `/quotas`: client quotas (KIP-546): every user / client-id entity with its four quota
//! values, a form that sets values of one entity, and removal of an entity's quotas with a
//! typed confirmation. Default entities are shown as `(default)`, apart from any name.

use askama::Template;
use serde::Serialize;

use crate::{FormState, Layout};

/// The quota keys, in the order the page shows them.
pub const QUOTA_COLUMNS: [&str; 4] = [
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];

/// One side (user or client id) of an entity that has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaPartView {
    /// True for the default entity (each user / client id without a quota of its own).
    pub default: bool,
    /// The name; `None` for the default entity.
    pub name: Option<String>,
}

impl QuotaPartView {
    /// `name` or `default`: the form's kind field for this part.
    pub fn kind(&self) -> &'static str {
        if self.default {
            "default"
        } else {
            "name"
        }
    }

    /// The name, empty for the default.
    pub fn name_or_empty(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// One quota entity and its values.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaRow {
    /// The user part (`None`: the entity has no user).
    pub user: Option<QuotaPartView>,
    /// The client-id part (`None`: the entity has no client id).
    pub client_id: Option<QuotaPartView>,
    /// Kafka's form of the entity (`user=alice,client-id=<default>`): what the removal
    /// confirmation must repeat, and the audit log's target.
    pub entity: String,
    /// Values of [`QUOTA_COLUMNS`] in order, `None` when unset.
    pub values: Vec<Option<f64>>,
}

impl QuotaRow {
    /// (key, value as shown: empty when unset) in column order.
    pub fn cells(&self) -> Vec<(&'static str, String)> {
        QUOTA_COLUMNS
            .iter()
            .zip(&self.values)
            .map(|(k, v)| (*k, v.map(|v| v.to_string()).unwrap_or_default()))
            .collect()
    }

    /// The form's kind for the user part: `none`, `default` or `name`.
    pub fn user_kind(&self) -> &'static str {
        self.user.as_ref().map_or("none", QuotaPartView::kind)
    }

    /// The user name, empty when there is none.
    pub fn user_name(&self) -> &str {
        self.user.as_ref().map_or("", QuotaPartView::name_or_empty)
    }

    /// The form's kind for the client-id part: `none`, `default` or `name`.
    pub fn client_kind(&self) -> &'static str {
        self.client_id.as_ref().map_or("none", QuotaPartView::kind)
    }

    /// The client id, empty when there is none.
    pub fn client_name(&self) -> &str {
        self.client_id
            .as_ref()
            .map_or("", QuotaPartView::name_or_empty)
    }
}

/// `/quotas`.
#[derive(Debug, Template, Serialize)]
#[template(path = "quotas.html")]
pub struct QuotasPage {
    /// Frame.
    pub layout: Layout,
    /// Every user / client-id quota entity, by entity.
    pub quotas: Vec<QuotaRow>,
    /// Why the quotas could not be listed.
    pub error: Option<String>,
    /// The quota keys (the table's columns and the form's fields).
    pub keys: Vec<String>,
    /// The forms after an error.
    pub form: FormState,
}

impl QuotasPage {
    /// The value the set form re-shows for `field` (`user_kind`/`client_kind` default to
    /// `none`).
    pub fn set_value(&self, field: &str) -> String {
        let v = self.form.value("set-quotas", field);
        if v.is_empty() && (field == "user_kind" || field == "client_kind") {
            "none".to_string()
        } else {
            v.to_string()
        }
    }
}
