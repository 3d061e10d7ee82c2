//! `/brokers/{id}`: one broker, its log dirs and configs.

use askama::Template;
use serde::Serialize;

use super::topic::ConfigRow;
use crate::model::BrokerInfo;
use crate::Layout;

/// One log dir of a broker.
#[derive(Debug, Clone, Serialize)]
pub struct LogDirView {
    /// Path.
    pub path: String,
    /// Error name when the dir is offline.
    pub error: Option<String>,
    /// Volume size (-1 = unknown).
    pub total_bytes: i64,
    /// Volume free space (-1 = unknown).
    pub usable_bytes: i64,
    /// Σ partition sizes.
    pub size: i64,
    /// Partitions in it.
    pub partitions: usize,
}

impl LogDirView {
    /// Σ sizes for people.
    pub fn size_text(&self) -> String {
        crate::format::bytes(Some(self.size))
    }

    /// Volume size for people.
    pub fn total_text(&self) -> String {
        crate::format::bytes(Some(self.total_bytes).filter(|b| *b >= 0))
    }

    /// Free space for people.
    pub fn usable_text(&self) -> String {
        crate::format::bytes(Some(self.usable_bytes).filter(|b| *b >= 0))
    }
}

/// `/brokers/{id}`.
#[derive(Debug, Template, Serialize)]
#[template(path = "broker.html")]
pub struct BrokerPage {
    /// Frame.
    pub layout: Layout,
    /// The broker as collected.
    pub broker: BrokerInfo,
    /// Its configs.
    pub configs: Vec<ConfigRow>,
    /// Its log dirs.
    pub log_dirs: Vec<LogDirView>,
    /// Why configs or log dirs are missing.
    pub error: Option<String>,
}
