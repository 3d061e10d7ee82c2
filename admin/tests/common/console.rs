//! Runs the real `rill console` binary against test brokers and talks HTTP to it with a
//! tiny blocking client (no HTTP client crate needed for a few requests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::wait_for;

/// A running console process.
pub struct ConsoleProc {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// Its temp dir (SQLite file inside), kept alive with it.
    pub dir: tempfile::TempDir,
}

impl ConsoleProc {
    /// Starts `rill console` on an ephemeral port with an SQLite store in a temp dir.
    pub fn start(bootstrap: &str) -> ConsoleProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("console.db").display());
        Self::start_with(bootstrap, &url, dir)
    }

    /// Starts `rill console` with the given database URL.
    pub fn start_with(bootstrap: &str, database_url: &str, dir: tempfile::TempDir) -> ConsoleProc {
        Self::start_full(bootstrap, database_url, dir, &[])
    }

    /// Starts `rill console` with the given database URL and extra flags.
    pub fn start_full(
        bootstrap: &str,
        database_url: &str,
        dir: tempfile::TempDir,
        extra: &[&str],
    ) -> ConsoleProc {
        let mut args = vec![
            "console",
            "--bootstrap",
            bootstrap,
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
            "--request-timeout-ms",
            "3000",
        ];
        // A fast collection unless the caller chose an interval.
        if !extra.contains(&"--collect-interval-ms") {
            args.extend(["--collect-interval-ms", "300"]);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
            .args(&args)
            .args(extra)
            .env(
                "RILL_LOG",
                std::env::var("RILL_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rill console");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("rill console ready: ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("console ready line within 30 s");
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let c = ConsoleProc { child, addr, dir };
        // Wait for a first successful collection (/metrics needs no login).
        wait_for(30, "the first collection", || {
            c.get("/metrics")
                .body
                .contains("\nrill_console_cluster_up 1\n")
                .then_some(())
        });
        c
    }

    /// GET with `Accept: application/json`, parsed (any status).
    pub fn json(&self, path: &str) -> Value {
        let r = self.request("GET", path, None, true);
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", r.body))
    }

    /// GET as a browser (HTML).
    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, None, false)
    }

    /// POST a JSON body, JSON answer.
    pub fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.request(
            "POST",
            path,
            Some(("application/json", body.to_string())),
            true,
        );
        let v = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("POST {path}: not JSON ({e}): {}", r.body));
        (r.status, v)
    }

    /// POST a form as a browser does.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.request(
            "POST",
            path,
            Some(("application/x-www-form-urlencoded", body)),
            false,
        )
    }

    /// One HTTP/1.1 request on a fresh connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, String)>,
        json: bool,
    ) -> Resp {
        self.request_with(method, path, body, json, &[])
    }

    /// One HTTP/1.1 request with extra headers.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, String)>,
        json: bool,
        headers: &[(&str, String)],
    ) -> Resp {
        let mut s = TcpStream::connect(&self.addr).expect("connect to the console");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if json {
            req.push_str("Accept: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = match body {
            Some((ct, b)) => {
                req.push_str(&format!(
                    "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                    b.len()
                ));
                b
            }
            None => String::new(),
        };
        req.push_str("\r\n");
        req.push_str(&body);
        s.write_all(req.as_bytes()).expect("write request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        parse(&raw)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ConsoleProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Resp {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// Form-encodes a value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Asserts a 4xx JSON error naming `field`, with a message.
pub fn assert_field_error(r: (u16, Value), status: u16, field: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["field"], field, "{}", r.1);
    assert!(
        !r.1["error"].as_str().unwrap_or("").is_empty(),
        "error message: {}",
        r.1
    );
}

/// An argon2 hash of `password`, from `rill console --hash-password`.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args(["console", "--hash-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// A logged-in session.
pub struct Session {
    /// The `Cookie` header value.
    pub cookie: String,
    /// The CSRF token of the page logged in to.
    pub csrf: String,
    /// The whole `Set-Cookie` header of the login answer.
    pub set_cookie: String,
    /// The page logged in to, as served to the session.
    pub page: String,
}

/// Logs `user` in through the form (password `pw`) and opens `next` with the session.
pub fn login(c: &ConsoleProc, user: &str, next: &str) -> Session {
    let r = c.post_form(
        "/login",
        &[("username", user), ("password", "pw"), ("next", next)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(next));
    let set_cookie = r.header("set-cookie").expect("set-cookie").to_string();
    let cookie = set_cookie.split(';').next().expect("cookie").to_string();
    let page = c.request_with("GET", next, None, false, &[("Cookie", cookie.clone())]);
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page
        .body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf token in the page")
        .to_string();
    Session {
        cookie,
        csrf,
        set_cookie,
        page: page.body,
    }
}

/// POSTs a form with a session cookie.
pub fn post_form_as(c: &ConsoleProc, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Resp {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    c.request_with(
        "POST",
        path,
        Some(("application/x-www-form-urlencoded", body)),
        false,
        &[("Cookie", cookie.to_string())],
    )
}
