//! `/brokers`: the broker list.

use askama::Template;
use serde::Serialize;

use crate::model::BrokerInfo;
use crate::Layout;

/// `/brokers`.
#[derive(Debug, Template, Serialize)]
#[template(path = "brokers.html")]
pub struct BrokersPage {
    /// Frame.
    pub layout: Layout,
    /// Brokers.
    pub brokers: Vec<BrokerInfo>,
}
