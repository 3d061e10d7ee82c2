//! Client quota settings, Kafka's names and defaults: the windows every quota's rate is
//! measured over (`quota.window.num` × `quota.window.size.seconds`; `controller.quota.window.*`
//! for `controller_mutation_rate`'s token bucket).

use std::collections::BTreeMap;

use super::{get_num, invalid, ConfigError};

/// Most windows a quota rate keeps (`quota.window.num` is refused above it).
pub const MAX_WINDOWS: u32 = 100;

/// The measurement windows of client quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// `quota.window.num` (11): how many windows a rate keeps.
    pub window_num: u32,
    /// `quota.window.size.seconds` (1): each window's length.
    pub window_size_seconds: u32,
    /// `controller.quota.window.num` (11): the windows of `controller_mutation_rate`.
    pub controller_window_num: u32,
    /// `controller.quota.window.size.seconds` (1).
    pub controller_window_size_seconds: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            window_num: 11,
            window_size_seconds: 1,
            controller_window_num: 11,
            controller_window_size_seconds: 1,
        }
    }
}

/// Reads the quota settings from the properties.
pub fn quota_config(raw: &BTreeMap<String, String>) -> Result<QuotaConfig, ConfigError> {
    let d = QuotaConfig::default();
    let windows = |key: &str, default: u32| -> Result<u32, ConfigError> {
        let n: u32 = get_num(raw, key, default, 1)?;
        if n > MAX_WINDOWS {
            return Err(invalid(
                key,
                &n.to_string(),
                &format!("at most {MAX_WINDOWS} windows"),
            ));
        }
        Ok(n)
    };
    let seconds = |key: &str, default: u32| -> Result<u32, ConfigError> {
        let n: u32 = get_num(raw, key, default, 1)?;
        if n > 3600 {
            return Err(invalid(key, &n.to_string(), "at most 3600"));
        }
        Ok(n)
    };
    Ok(QuotaConfig {
        window_num: windows("quota.window.num", d.window_num)?,
        window_size_seconds: seconds("quota.window.size.seconds", d.window_size_seconds)?,
        controller_window_num: windows("controller.quota.window.num", d.controller_window_num)?,
        controller_window_size_seconds: seconds(
            "controller.quota.window.size.seconds",
            d.controller_window_size_seconds,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_bounds_are_checked() {
        assert_eq!(
            quota_config(&BTreeMap::new()).expect("defaults"),
            QuotaConfig::default()
        );
        let at = |k: &str, v: &str| quota_config(&[(k.to_string(), v.to_string())].into());
        assert_eq!(at("quota.window.num", "5").expect("valid").window_num, 5);
        assert!(at("quota.window.num", "0").is_err());
        assert!(at("quota.window.num", "1000").is_err());
        assert!(at("quota.window.size.seconds", "x").is_err());
        assert!(at("controller.quota.window.num", "0").is_err());
    }
}
