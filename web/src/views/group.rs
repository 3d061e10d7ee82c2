//! `/groups/{id}`: one group, its lag, thresholds and offset reset.

use askama::Template;
use serde::Serialize;

use crate::model::{Forecast, GroupInfo};
use crate::{FormState, Layout};

/// Status thresholds as shown and edited.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdsView {
    /// Lag in offsets.
    pub max_lag: i64,
    /// Time lag in seconds.
    pub max_lag_seconds: f64,
    /// Seconds without progress.
    pub stall_seconds: i64,
    /// True when this group has its own (not the defaults).
    pub own: bool,
}

/// One partition of an offset reset plan.
#[derive(Debug, Clone, Serialize)]
pub struct ResetRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed now (-1 = none).
    pub current: i64,
    /// After the reset.
    pub target: i64,
}

/// An offset reset plan (preview) or its result (applied).
#[derive(Debug, Clone, Serialize)]
pub struct ResetPlan {
    /// Topic.
    pub topic: String,
    /// `earliest`, `latest`, `timestamp`, `offset`.
    pub strategy: String,
    /// The strategy's value (timestamp or offset), as typed.
    pub value: String,
    /// Per partition.
    pub rows: Vec<ResetRow>,
    /// True once committed.
    pub applied: bool,
    /// True when Apply was asked without confirming: the plan is shown with a button that
    /// applies exactly it.
    pub awaiting_confirmation: bool,
}

/// `/groups/{id}`.
#[derive(Debug, Template, Serialize)]
#[template(path = "group.html")]
pub struct GroupPage {
    /// Frame.
    pub layout: Layout,
    /// The group as collected.
    pub group: GroupInfo,
    /// Status thresholds.
    pub thresholds: ThresholdsView,
    /// Topics that exist (for the reset form).
    pub topics: Vec<String>,
    /// A reset preview or result.
    pub reset: Option<ResetPlan>,
    /// The form that failed, if any.
    pub form: FormState,
}

impl GroupPage {
    /// The forecast's state name (`catching_up`, `falling_behind`, ...), for tests and CSS.
    pub fn forecast_state(&self) -> &'static str {
        match self.group.forecast {
            Forecast::Unknown => "unknown",
            Forecast::CaughtUp => "caught_up",
            Forecast::CatchingUp { .. } => "catching_up",
            Forecast::FallingBehind { .. } => "falling_behind",
            Forecast::NotConsuming { .. } => "not_consuming",
        }
    }

    /// Partitions with a committed offset (what a deletion removes).
    pub fn committed_partitions(&self) -> usize {
        self.group
            .partitions
            .iter()
            .filter(|p| p.committed >= 0)
            .count()
    }

    /// How long ago `ms` was, relative to the data shown.
    pub fn age(&self, ms: &i64) -> String {
        let ms = *ms;
        if ms <= 0 {
            return "never".into();
        }
        let secs = (self.layout.collected_at_ms - ms).max(0) as f64 / 1000.0;
        format!("{} ago", crate::format::duration_secs(secs))
    }

    /// What the reset form shows in `field` (`topic`, `strategy`, `value`): the values just
    /// submitted after an error, else the previewed plan's, so Apply after a preview applies
    /// exactly what was previewed.
    pub fn reset_value(&self, field: &str) -> String {
        if self
            .form
            .error
            .as_ref()
            .is_some_and(|e| e.form == "reset-offsets")
        {
            return self.form.value("reset-offsets", field).to_string();
        }
        match (&self.reset, field) {
            (Some(r), "topic") => r.topic.clone(),
            (Some(r), "strategy") => r.strategy.clone(),
            (Some(r), "value") => r.value.clone(),
            _ => String::new(),
        }
    }
}
