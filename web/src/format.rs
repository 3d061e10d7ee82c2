//! Formatting for people: times, byte sizes, record bytes as text, JSON or hex.

/// `YYYY-MM-DD HH:MM:SS UTC` for ms since the epoch.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days → (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `1.5 MiB` style sizes; `-` when unknown.
pub fn bytes(n: Option<i64>) -> String {
    let Some(n) = n else { return "-".into() };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `45 s`, `14 min`, `3.2 h`, `2.1 d`: a duration in seconds for people, rounded to the
/// unit it is read in; `∞` for an infinite or unknown one.
pub fn duration_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return "∞".into();
    }
    let s = secs.max(0.0);
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 36.0 * 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// A rate in messages per second: `0.4`, `40`, `12,345` style (no decimals past 10/s).
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() {
        return "?".into();
    }
    if per_sec.abs() < 10.0 {
        format!("{per_sec:.1}")
    } else {
        format!("{per_sec:.0}")
    }
}

/// Percent-encodes one URL path segment (group ids may hold any character).
pub fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How record bytes are shown in the message browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BytesFormat {
    /// UTF-8 text (invalid sequences replaced).
    #[default]
    Text,
    /// Pretty-printed JSON when the bytes parse as JSON, else text.
    Json,
    /// Hex dump.
    Hex,
}

impl BytesFormat {
    /// Parses `text`, `json` or `hex`.
    pub fn parse(s: &str) -> Option<BytesFormat> {
        match s {
            "" | "text" => Some(BytesFormat::Text),
            "json" => Some(BytesFormat::Json),
            "hex" => Some(BytesFormat::Hex),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            BytesFormat::Text => "text",
            BytesFormat::Json => "json",
            BytesFormat::Hex => "hex",
        }
    }
}

/// Record bytes in `format`; `None` stays `None` (a null key or a tombstone).
pub fn record_bytes(b: Option<&[u8]>, format: BytesFormat) -> Option<String> {
    let b = b?;
    Some(match format {
        BytesFormat::Text => String::from_utf8_lossy(b).into_owned(),
        BytesFormat::Json => match serde_json::from_slice::<serde_json::Value>(b) {
            Ok(v) => serde_json::to_string_pretty(&v)
                .unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned()),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        },
        BytesFormat::Hex => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sizes_and_bytes() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(bytes(Some(512)), "512 B");
        assert_eq!(bytes(Some(1536)), "1.5 KiB");
        assert_eq!(bytes(None), "-");
        assert_eq!(
            record_bytes(Some(b"{\"a\":1}"), BytesFormat::Json).unwrap(),
            "{\n  \"a\": 1\n}"
        );
        assert_eq!(
            record_bytes(Some(b"hi"), BytesFormat::Hex).unwrap(),
            "68 69"
        );
        assert_eq!(record_bytes(None, BytesFormat::Text), None);
        assert_eq!(path_segment("team a/b"), "team%20a%2Fb");
        assert_eq!(duration_secs(45.4), "45 s");
        assert_eq!(duration_secs(14.0 * 60.0), "14 min");
        assert_eq!(duration_secs(3.0 * 3600.0), "3.0 h");
        assert_eq!(duration_secs(f64::INFINITY), "∞");
        assert_eq!(rate(0.44), "0.4");
        assert_eq!(rate(40.2), "40");
    }
}
