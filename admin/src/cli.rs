//! What the cluster commands share: connection flags, the output format, aligned tables,
//! errors with their exit codes, and small argument parsers.

use std::time::Duration;

use clap::{Args, ValueEnum};
use rill_client::security::ClientSecurity;
use rill_client::{ClientError, Cluster, ConnectionConfig};

/// Exit code for a failed operation (the message goes to stderr).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage (as clap uses).
pub const EXIT_USAGE: u8 = 2;

/// Flags every cluster command takes.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The servers to bootstrap from.
    #[arg(
        long = "bootstrap-server",
        value_name = "HOST:PORT[,HOST:PORT...]",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    /// Output format: aligned tables for people, JSON for scripts.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Time limit per request (and per connection attempt, at most 5000), in ms.
    #[arg(long = "timeout", value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// Kafka client properties for a secured cluster (`security.protocol`, `sasl.mechanism`,
    /// `sasl.jaas.config`, `ssl.truststore.location`, ...), as Kafka's tools take them.
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

impl ConnectArgs {
    /// Connects to the cluster.
    pub async fn connect(&self) -> Result<Cluster, CliError> {
        let timeout = Duration::from_millis(self.timeout_ms);
        let security = match &self.command_config {
            Some(path) => ClientSecurity::from_file(path)
                .map_err(|e| CliError::Usage(format!("--command-config: {e}")))?,
            None => ClientSecurity::default(),
        };
        let config = ConnectionConfig {
            client_id: "rill-cli".to_string(),
            connect_timeout: timeout.min(Duration::from_secs(5)),
            request_timeout: timeout,
            security,
            ..ConnectionConfig::default()
        };
        Cluster::connect(&self.bootstrap_server, config)
            .await
            .map_err(|e| match e {
                ClientError::InvalidAddress(_) => CliError::Usage(format!(
                    "--bootstrap-server '{}': {e}",
                    self.bootstrap_server
                )),
                e => CliError::Failed(format!(
                    "cannot connect to the cluster at {}: {e}",
                    self.bootstrap_server
                )),
            })
    }
}

/// A change a command is about to attempt, for the audit trail (`crate::ops::audit`).
#[derive(Debug, Clone)]
pub struct Change {
    /// The console's action name (`create-topic`, `reset-offsets`, ...).
    pub action: &'static str,
    /// A topic, a group, or `cluster`.
    pub target: String,
    /// Where to record it.
    pub connect: ConnectArgs,
}

impl Change {
    /// A change of `action` on `target` in the cluster `connect` reaches.
    pub fn new(action: &'static str, target: impl Into<String>, connect: &ConnectArgs) -> Change {
        Change {
            action,
            target: target.into(),
            connect: connect.clone(),
        }
    }
}

/// `--output`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// One JSON document on stdout.
    Json,
}

/// Why a command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong flags or values: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The operation failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// A failure with context: `"{context}: {error}"`.
    pub fn client(context: impl std::fmt::Display, e: ClientError) -> CliError {
        CliError::Failed(format!("{context}: {e}"))
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// A table with a header row; columns are left-aligned and padded to the widest cell.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row (missing cells are empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered table, each line prefixed by `indent`, without trailing spaces.
    pub fn render(&self, indent: &str) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::from(indent);
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if c + 1 < cols {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints a JSON value on stdout.
pub fn print_json(value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        // Serializing a `Value` cannot fail; be explicit anyway.
        Err(e) => eprintln!("cannot render JSON: {e}"),
    }
}

/// Parses `key=value` (`--config`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// A list of ids for a table cell: `1,2,3`.
pub fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Parses `YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM]` into ms since the Unix epoch. Without a
/// zone the time is taken as UTC (kafka-consumer-groups.sh uses the local zone; a script
/// should not depend on where it runs).
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad =
        || format!("invalid date-time '{s}': expected YYYY-MM-DDTHH:mm:SS[.sss][Z|+HH:MM|-HH:MM]");
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 || d[0].len() != 4 || d[1].len() != 2 || d[2].len() != 2 {
        return Err(bad());
    }
    let num = |x: &str| -> Result<i64, String> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    // Split off the zone: 'Z', or the last '+'/'-' in the time part.
    let (time, offset_min) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':').unwrap_or((&z[1..], "00"));
        let (zh, zm) = (num(zh)?, num(zm)?);
        if zh > 23 || zm > 59 {
            return Err(bad());
        }
        (t, sign * (zh * 60 + zm))
    } else {
        (rest, 0)
    };
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            if frac.is_empty() || frac.len() > 3 {
                return Err(bad());
            }
            let ms = num(frac)? * 10_i64.pow(3 - frac.len() as u32);
            (hms, ms)
        }
        None => (time, 0),
    };
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() != 3 || t.iter().any(|x| x.len() != 2) {
        return Err(bad());
    }
    let (h, mi, sec) = (num(t[0])?, num(t[1])?, num(t[2])?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let mut t = Table::new(&["A", "LONGER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        t.row(vec!["y".into()]);
        assert_eq!(t.render(""), "A          LONGER\nwide cell  x\ny\n");
    }

    #[test]
    fn datetimes_parse_like_kafka() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00.000").unwrap(),
            1_704_067_200_000
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:30:15.5Z").unwrap(),
            1_709_209_815_500
        );
        assert_eq!(
            parse_datetime("2024-01-01T01:00:00+01:00").unwrap(),
            1_704_067_200_000
        );
        assert_eq!(
            parse_datetime("2023-12-31T23:00:00.000-01:00").unwrap(),
            1_704_067_200_000
        );
        for bad in [
            "2024-01-01",
            "2024-13-01T00:00:00",
            "2023-02-29T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:00:00.1234",
            "yesterday",
            "2024-01-01T00:00",
            "2024-1-01T00:00:00",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("retention.ms=1=2").unwrap(),
            ("retention.ms".into(), "1=2".into())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
