//! Dynamic broker configs: the keys that IncrementalAlterConfigs may change at run time on a
//! BROKER resource (kept in the metadata image), and their validation. Today these are the
//! replication throttle rates that reassignments use (`replica/throttle.rs` applies them).

/// Broker config: the leader-side rate limit, bytes/s.
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// Broker config: the follower-side rate limit, bytes/s.
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// The broker configs that can be changed at run time (IncrementalAlterConfigs on a BROKER
/// resource); Kafka's default for both is `Long.MAX_VALUE`, no limit.
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[LEADER_RATE, FOLLOWER_RATE];

/// Checks one dynamic broker config and returns its normalised value.
pub fn validate_broker_config(key: &str, value: &str) -> Result<String, String> {
    if !DYNAMIC_BROKER_CONFIGS.contains(&key) {
        return Err(format!(
            "Cannot update these configs dynamically: {key} (dynamic broker configs: {})",
            DYNAMIC_BROKER_CONFIGS.join(", ")
        ));
    }
    let v = value.trim();
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(v.to_string()),
        _ => Err(format!(
            "Invalid value {value} for configuration {key}: Value must be a LONG of at least 0"
        )),
    }
}
