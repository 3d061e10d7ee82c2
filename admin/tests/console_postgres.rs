//! The console's store on PostgreSQL: a throwaway server from Debian's binaries
//! (`/usr/lib/postgresql/*/bin`) in a temp dir on a free loopback port; migrations apply,
//! changes (the console's and the CLI's) land in the audit log, and a restarted console
//! finds them again.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::console::ConsoleProc;
use common::BrokerProc;
use serde_json::json;

/// The newest installed PostgreSQL's bin dir.
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb refuses root).
fn pg(tool: &Path, args: &[&str]) {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    let out = cmd.args(args).output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Postgres {
    bin: PathBuf,
    data: String,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    fn start() -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the temp dir to postgres");
        }
        let data = dir.path().join("data").display().to_string();
        let sock = dir.path().display().to_string();
        let log = dir.path().join("pg.log").display().to_string();
        pg(
            &bin.join("initdb"),
            &["-D", &data, "-A", "trust", "-U", "rill", "--no-sync"],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let opts = format!("-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off");
        pg(
            &bin.join("pg_ctl"),
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        Postgres {
            bin,
            data,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("postgres://rill@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let tool = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&tool);
            c
        } else {
            Command::new(&tool)
        };
        let _ = cmd
            .args(["-D", &self.data, "-m", "immediate", "stop"])
            .output();
    }
}

#[test]
fn the_store_works_on_postgresql() {
    let pg = Postgres::start();
    let b = BrokerProc::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ConsoleProc::start_with(&b.bootstrap, &pg.url(), dir);
    let (s, v) = c.post_json("/topics", json!({"name": "pg-topic", "partitions": 2}));
    assert_eq!(s, 200, "{v}");
    let (s, _) = c.post_json("/topics", json!({"name": "bad name", "partitions": 2}));
    assert_eq!(s, 400);
    let (s, v) = c.post_json(
        "/groups/*/thresholds",
        json!({"max_lag": 10, "max_lag_seconds": 1.5, "stall_seconds": 60}),
    );
    assert_eq!(s, 200, "{v}");
    // A CLI change, imported from __rill_audit into PostgreSQL.
    common::rill(&[
        "topics",
        "--bootstrap-server",
        &b.bootstrap,
        "--create",
        "--topic",
        "pg-cli-topic",
    ])
    .ok();
    let entries = common::wait_for(20, "the CLI change in the audit log", || {
        let entries = c.json("/audit")["entries"].clone();
        let imported = entries.as_array()?.iter().any(|e| e["via"] == "cli");
        imported.then_some(entries)
    });
    let actions: Vec<(String, bool)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("create-topic".into(), true)),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("create-topic".into(), false)),
        "{actions:?}"
    );
    assert_eq!(actions.len(), 4, "{actions:?}");
    drop(c);
    // A second console on the same database: migrations already applied, data kept.
    let dir = tempfile::tempdir().expect("tempdir");
    let c = ConsoleProc::start_with(&b.bootstrap, &pg.url(), dir);
    let again = c.json("/audit")["entries"].as_array().map(Vec::len);
    assert_eq!(
        again,
        Some(actions.len()),
        "the CLI change is not imported twice"
    );
    // Samples land in the store (the 1 h series of the topic's partitions feed time lag).
    common::wait_for(20, "a produce to be collected", || {
        let (s, _) = c.post_json(
            "/topics/pg-topic/produce",
            json!({"partition": 0, "value": "x"}),
        );
        (s == 200).then_some(())
    });
}
