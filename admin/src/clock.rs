//! The wall clock, in the unit every store row, audit record and sample uses. One place,
//! below the console and the CLI's audit log, so neither imports the other for it.

/// Now, ms since the epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
