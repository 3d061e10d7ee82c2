//! `/topics/{name}`: one topic, its configs and forms.

use askama::Template;
use serde::Serialize;

use crate::model::{PartitionInfo, TopicInfo};
use crate::{FormState, Layout};

impl TopicPage {
    /// The link to a consuming group's page.
    pub fn group_href(&self, group: &str) -> String {
        format!("/groups/{}", crate::format::path_segment(group))
    }
}

/// One config of a topic or broker.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRow {
    /// Name.
    pub name: String,
    /// Effective value.
    pub value: Option<String>,
    /// What it falls back to.
    pub default_value: Option<String>,
    /// Kafka's source name.
    pub source: String,
    /// Cannot be altered.
    pub read_only: bool,
    /// Hidden value.
    pub sensitive: bool,
    /// Kafka's type name.
    pub config_type: String,
    /// Documentation.
    pub documentation: Option<String>,
}

impl ConfigRow {
    /// Value or `-`.
    pub fn value_text(&self) -> &str {
        if self.sensitive {
            "(sensitive)"
        } else {
            self.value.as_deref().unwrap_or("-")
        }
    }

    /// Default or `-`.
    pub fn default_text(&self) -> &str {
        self.default_value.as_deref().unwrap_or("-")
    }

    /// Set on the resource itself (not inherited).
    pub fn is_override(&self) -> bool {
        self.source == "DYNAMIC_TOPIC_CONFIG" || self.source == "DYNAMIC_BROKER_CONFIG"
    }
}

/// `/topics/{name}`.
#[derive(Debug, Template, Serialize)]
#[template(path = "topic.html")]
pub struct TopicPage {
    /// Frame.
    pub layout: Layout,
    /// The topic as collected (every partition: the summary and the JSON count them all).
    pub topic: TopicInfo,
    /// The page of the partitions table.
    pub partitions: Vec<PartitionInfo>,
    /// Which page of the partitions it is.
    pub paging: super::Paging,
    /// Its configs, read when the page was asked for.
    pub configs: Vec<ConfigRow>,
    /// Why the configs are missing, if they are.
    pub configs_error: Option<String>,
    /// Groups with offsets on it.
    pub groups: Vec<String>,
    /// The form that failed, if any.
    pub form: FormState,
}
