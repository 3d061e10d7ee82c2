//! `rill users`: SCRAM credentials with kafka-configs.sh's user form:
//! `--describe [--entity-name U]`, `--alter --entity-name U --add-config
//! 'SCRAM-SHA-512=[iterations=8192,password=...]'`, `--alter --entity-name U --delete-config
//! SCRAM-SHA-256`. Passwords are salted here; the cluster stores keys derived from them.

use clap::{ArgGroup, Args};
use rill_client::security::SaslMechanism;
use rill_client::users::{ScramChange, DEFAULT_SCRAM_ITERATIONS};
use serde_json::json;

use crate::cli::{print_json, Change, CliError, ConnectArgs, Output, Table};

/// Arguments of `rill users`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["describe", "alter"])))]
pub struct UsersArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Show users' SCRAM mechanisms and iterations (never salts or keys).
    #[arg(long)]
    describe: bool,
    /// Set or delete a user's credentials (with --add-config / --delete-config).
    #[arg(long)]
    alter: bool,
    /// kafka-configs.sh's entity type; only `users` here.
    #[arg(long = "entity-type", default_value = "users")]
    entity_type: String,
    /// The user.
    #[arg(long = "entity-name", value_name = "USER")]
    entity_name: Option<String>,
    /// `SCRAM-SHA-256=[iterations=N,password=P],SCRAM-SHA-512=[password=P]`.
    #[arg(long = "add-config", value_name = "CONFIGS")]
    add_config: Option<String>,
    /// Mechanisms to remove, comma-separated (`SCRAM-SHA-256`).
    #[arg(long = "delete-config", value_name = "MECHANISMS")]
    delete_config: Option<String>,
}

impl UsersArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        if !self.alter {
            return None;
        }
        let target = self.entity_name.clone().unwrap_or_default();
        Some(Change::new("alter-scram-user", target, &self.connect))
    }
}

/// Runs `rill users`.
pub async fn run(args: UsersArgs) -> Result<(), CliError> {
    if args.entity_type != "users" {
        return Err(CliError::Usage(format!(
            "--entity-type {}: only users (SCRAM credentials) are supported",
            args.entity_type
        )));
    }
    if args.describe {
        let cluster = args.connect.connect().await?;
        let names: Vec<String> = args.entity_name.iter().cloned().collect();
        let users = cluster
            .describe_scram_users(&names)
            .await
            .map_err(|e| CliError::client("describing SCRAM users", e))?;
        match args.connect.output {
            Output::Json => print_json(&json!({ "users": users })),
            Output::Table => {
                let mut t = Table::new(&["USER", "MECHANISM", "ITERATIONS"]);
                for u in &users {
                    for (m, i) in &u.credentials {
                        t.row(vec![u.user.clone(), m.clone(), i.to_string()]);
                    }
                }
                print!("{}", t.render(""));
            }
        }
        return Ok(());
    }
    let user = args
        .entity_name
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| CliError::Usage("--alter needs --entity-name".into()))?;
    let mut changes = Vec::new();
    if let Some(add) = &args.add_config {
        for (mechanism, iterations, password) in parse_add_config(add).map_err(CliError::Usage)? {
            changes.push(ScramChange::Upsert {
                user: user.clone(),
                mechanism,
                iterations,
                password,
            });
        }
    }
    if let Some(del) = &args.delete_config {
        for m in del.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            let mechanism = scram(m).map_err(CliError::Usage)?;
            changes.push(ScramChange::Delete {
                user: user.clone(),
                mechanism,
            });
        }
    }
    if changes.is_empty() {
        return Err(CliError::Usage(
            "--alter needs --add-config or --delete-config".into(),
        ));
    }
    let cluster = args.connect.connect().await?;
    let results = cluster
        .alter_scram_users(&changes)
        .await
        .map_err(|e| CliError::client("altering SCRAM users", e))?;
    for (u, r) in results {
        r.map_err(|e| CliError::client(format!("user {u}"), e))?;
    }
    match args.connect.output {
        Output::Json => print_json(&json!({ "user": user, "changes": changes.len() })),
        Output::Table => println!("Completed updating config for user {user}."),
    }
    Ok(())
}

fn scram(name: &str) -> Result<SaslMechanism, String> {
    match SaslMechanism::parse(name) {
        Some(m) if m != SaslMechanism::Plain => Ok(m),
        _ => Err(format!(
            "{name}: the mechanisms are SCRAM-SHA-256 and SCRAM-SHA-512"
        )),
    }
}

/// `MECH=[iterations=N,password=P],MECH=[password=P]` into (mechanism, iterations, password).
fn parse_add_config(s: &str) -> Result<Vec<(SaslMechanism, u32, String)>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=[")
            .ok_or_else(|| format!("expected MECHANISM=[password=...] in {rest:?}"))?;
        let end = after
            .find(']')
            .ok_or_else(|| format!("missing ] after {name}"))?;
        let mechanism = scram(name.trim())?;
        let mut iterations = DEFAULT_SCRAM_ITERATIONS;
        let mut password = None;
        for kv in after[..end].split(',') {
            match kv.split_once('=') {
                Some(("iterations", v)) => {
                    iterations = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("iterations={v}: not a number"))?
                }
                Some(("password", v)) => password = Some(v.to_string()),
                _ => return Err(format!("{kv:?}: expected iterations=N or password=P")),
            }
        }
        let password = password.ok_or_else(|| format!("{name}: no password"))?;
        out.push((mechanism, iterations, password));
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_as_kafka_configs_takes_it() {
        let got = parse_add_config(
            "SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[password=p]",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (SaslMechanism::ScramSha256, 8192, "alice-secret".to_string()),
                (SaslMechanism::ScramSha512, 4096, "p".to_string())
            ]
        );
        for bad in [
            "SCRAM-SHA-1=[password=x]",
            "PLAIN=[password=x]",
            "SCRAM-SHA-256=[iterations=x,password=y]",
            "SCRAM-SHA-256=[iterations=4096]",
            "SCRAM-SHA-256=[password=x",
            "password=x",
        ] {
            assert!(parse_add_config(bad).is_err(), "{bad}");
        }
    }
}
