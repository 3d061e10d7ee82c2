//! This build's collector next to a baseline `rill` (`RILL_BASELINE_RILL_BIN`, e.g. built
//! from the commit before a change), on the same cluster in the same run: each console in
//! turn (baseline, this, baseline, this) starts on a fresh SQLite store, waits for its first
//! full snapshot, then is watched for a while: every collection's
//! `rill_console_collect_duration_seconds` and the most RSS seen.

use std::time::{Duration, Instant};

use crate::http::Http;
use crate::machine::{metric, proc_status_kb};
use crate::procs::{launch_bin, Proc};

/// One console watched.
pub struct Observed {
    /// `this build` or `baseline`.
    pub label: &'static str,
    /// Seconds from start to a snapshot with every group.
    pub first_full_s: f64,
    /// Collection durations seen, s.
    pub collects: Vec<f64>,
    /// Most RSS seen, KiB.
    pub rss_max_kb: u64,
}

/// Starts `bin console` on `bootstrap`, waits for `groups` groups, watches `secs` seconds.
pub fn observe(
    label: &'static str,
    bin: &str,
    bootstrap: &str,
    groups: u64,
    secs: u64,
) -> Observed {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_url = format!("sqlite://{}", dir.path().join("console.db").display());
    let t = Instant::now();
    let (child, rx) = launch_bin(
        bin,
        &[
            "console".into(),
            "--bootstrap".into(),
            bootstrap.to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--database-url".into(),
            db_url,
        ],
        "rill console ready: ",
    );
    let pid = child.id();
    let _console = Proc {
        child,
        _dir: Some(dir),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("console ready line within 60 s");
    let addr = line
        .trim_start_matches("rill console ready: ")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut http = Http::new(&addr);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = loop {
        let v = http.json("/");
        if v["totals"]["groups"].as_u64() == Some(groups) {
            break v["layout"]["collected_at_ms"].as_i64().unwrap_or(0);
        }
        assert!(
            Instant::now() < deadline,
            "{label}: no full snapshot in 180 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let first_full_s = t.elapsed().as_secs_f64();
    let mut collects = Vec::new();
    let mut rss_max_kb = 0;
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let ts = http.json("/")["layout"]["collected_at_ms"]
            .as_i64()
            .unwrap_or(0);
        if ts != last {
            last = ts;
            let m = http.get("/metrics", false);
            if let Some(s) = metric(
                &String::from_utf8_lossy(&m.body),
                "rill_console_collect_duration_seconds",
            ) {
                collects.push(s);
            }
        }
        rss_max_kb = rss_max_kb.max(proc_status_kb(pid, "VmRSS"));
        std::thread::sleep(Duration::from_millis(50));
    }
    Observed {
        label,
        first_full_s,
        collects,
        rss_max_kb,
    }
}
