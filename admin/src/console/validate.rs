//! Input checks shared by the forms and the JSON endpoints. Each failure names the field,
//! so the page can show the message beside it. Checks the cluster would make anyway
//! (config values) are still made by the cluster, with `validate_only` where it helps.

use super::http::ConsoleError;

/// Kafka's longest topic name.
const MAX_TOPIC_NAME: usize = 249;

/// A topic name as Kafka accepts it: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn topic_name(field: &str, name: &str) -> Result<String, ConsoleError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ConsoleError::invalid(field, "a topic name is required"));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(ConsoleError::invalid(
            field,
            format!("a topic name has at most {MAX_TOPIC_NAME} characters"),
        ));
    }
    if name == "." || name == ".." {
        return Err(ConsoleError::invalid(
            field,
            "'.' and '..' are not topic names",
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(ConsoleError::invalid(
            field,
            format!("'{c}' is not allowed in a topic name (use letters, digits, '.', '_' and '-')"),
        ));
    }
    Ok(name.to_string())
}

/// An integer in `min..=max`.
pub fn int_in(field: &str, s: &str, min: i64, max: i64) -> Result<i64, ConsoleError> {
    let v: i64 = s.trim().parse().map_err(|_| {
        ConsoleError::invalid(field, format!("'{}' is not a whole number", s.trim()))
    })?;
    if v < min || v > max {
        return Err(ConsoleError::invalid(
            field,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

/// A non-negative number (seconds and the like).
pub fn non_negative_f64(field: &str, s: &str) -> Result<f64, ConsoleError> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(ConsoleError::invalid(
            field,
            format!("'{}' is not a non-negative number", s.trim()),
        )),
    }
}

/// `key=value` lines (blank lines skipped).
pub fn key_values(field: &str, text: &str) -> Result<Vec<(String, String)>, ConsoleError> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| ConsoleError::invalid(field, format!("'{line}' is not key=value")))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(ConsoleError::invalid(
                field,
                format!("'{line}' has an empty key"),
            ));
        }
        out.push((k.to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// An offset (≥ 0).
pub fn offset(field: &str, s: &str) -> Result<i64, ConsoleError> {
    let s = s.trim();
    match s.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(ConsoleError::invalid(
            field,
            format!("'{s}' is not an offset (a whole number ≥ 0)"),
        )),
    }
}

/// A point in time: ms since the epoch, or ISO 8601 (`2026-01-01T00:00:00Z`).
pub fn timestamp(field: &str, s: &str) -> Result<i64, ConsoleError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| ConsoleError::invalid(field, format!("'{s}' is too large")));
    }
    crate::cli::parse_datetime(s).map_err(|e| ConsoleError::invalid(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(topic_name("name", "orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a b", "é", "a/b", &"x".repeat(250)] {
            assert!(topic_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_offsets_and_times() {
        assert_eq!(int_in("p", " 3 ", 1, 10).unwrap(), 3);
        assert!(int_in("p", "0", 1, 10).is_err());
        assert!(int_in("p", "x", 1, 10).is_err());
        assert!(offset("o", "-1").is_err());
        assert_eq!(offset("o", "42").unwrap(), 42);
        assert_eq!(timestamp("t", "1000").unwrap(), 1000);
        assert_eq!(timestamp("t", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(timestamp("t", "yesterday").is_err());
        assert!(non_negative_f64("s", "-1").is_err());
        assert!(key_values("c", "a=1\n\nb = 2").unwrap().len() == 2);
        assert!(key_values("c", "novalue").is_err());
    }
}
