//! `rill quotas`: client quotas (KIP-546) with kafka-configs.sh's forms: `--describe` (every
//! entity, or those an entity option names), `--alter --add-config
//! 'producer_byte_rate=1048576,request_percentage=50' --delete-config consumer_byte_rate`.
//! The entity is `--user NAME` / `--user-defaults` and/or `--client ID` /
//! `--client-defaults`, or one `--entity-type users|clients` with `--entity-name NAME` or
//! `--entity-default`. Values are checked here for shape; the cluster's refusals are shown
//! as it words them.

use clap::{ArgGroup, Args};
use rill_client::quotas::{QuotaAlteration, QuotaEntity, QUOTA_KEYS};
use serde_json::json;

use crate::cli::{print_json, Change, CliError, ConnectArgs, Output, Table};

/// Arguments of `rill quotas`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["describe", "alter"])))]
pub struct QuotasArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// List quotas: every entity, or the ones the entity options name.
    #[arg(long)]
    describe: bool,
    /// Set or remove quotas of one entity (with --add-config / --delete-config).
    #[arg(long)]
    alter: bool,
    /// A user entity (the principal's name; `ANONYMOUS` on unauthenticated listeners).
    #[arg(long, value_name = "NAME", conflicts_with = "user_defaults")]
    user: Option<String>,
    /// The default user entity: each user without a quota of its own.
    #[arg(long = "user-defaults")]
    user_defaults: bool,
    /// A client-id entity.
    #[arg(long, value_name = "ID", conflicts_with = "client_defaults")]
    client: Option<String>,
    /// The default client-id entity: each client id without a quota of its own.
    #[arg(long = "client-defaults")]
    client_defaults: bool,
    /// kafka-configs.sh's form: `users` or `clients` (one), with --entity-name or
    /// --entity-default.
    #[arg(long = "entity-type", value_name = "users|clients")]
    entity_type: Option<String>,
    /// The entity's name (with --entity-type).
    #[arg(
        long = "entity-name",
        value_name = "NAME",
        conflicts_with = "entity_default"
    )]
    entity_name: Option<String>,
    /// The default entity of --entity-type.
    #[arg(long = "entity-default")]
    entity_default: bool,
    /// `producer_byte_rate=N,consumer_byte_rate=N,request_percentage=P`.
    #[arg(long = "add-config", value_name = "CONFIGS")]
    add_config: Option<String>,
    /// Quota keys to remove, comma-separated.
    #[arg(long = "delete-config", value_name = "KEYS")]
    delete_config: Option<String>,
}

/// Longest entity name taken (the broker's limit).
const MAX_NAME: usize = 1024;

impl QuotasArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        if !self.alter {
            return None;
        }
        let target = self.entity().map(|e| e.to_string()).unwrap_or_default();
        Some(Change::new("alter-client-quotas", target, &self.connect))
    }

    /// The entity the options name (empty: none named).
    fn entity(&self) -> Result<QuotaEntity, String> {
        let name = |n: &Option<String>, default: bool| -> Result<Option<Option<String>>, String> {
            match (n, default) {
                (Some(n), _) if n.is_empty() => Err("an entity name may not be empty".into()),
                (Some(n), _) if n.len() > MAX_NAME => {
                    Err(format!("an entity name is at most {MAX_NAME} bytes"))
                }
                (Some(n), _) => Ok(Some(Some(n.clone()))),
                (None, true) => Ok(Some(None)),
                (None, false) => Ok(None),
            }
        };
        let mut e = QuotaEntity {
            user: name(&self.user, self.user_defaults)?,
            client_id: name(&self.client, self.client_defaults)?,
        };
        if let Some(kind) = &self.entity_type {
            let part = name(&self.entity_name, self.entity_default)?.ok_or_else(|| {
                "--entity-type needs --entity-name or --entity-default".to_string()
            })?;
            let slot = match kind.as_str() {
                "users" => &mut e.user,
                "clients" => &mut e.client_id,
                other => {
                    return Err(format!(
                        "--entity-type {other}: quotas are set on users and clients"
                    ))
                }
            };
            if slot.is_some() {
                return Err(format!("the {kind} entity is given twice"));
            }
            *slot = Some(part);
        } else if self.entity_name.is_some() || self.entity_default {
            return Err("--entity-name and --entity-default need --entity-type".into());
        }
        Ok(e)
    }
}

/// `key=value,...` into checked (key, value) pairs.
fn parse_add_config(s: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for kv in s.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("{kv:?}: expected key=value"))?;
        let k = known_key(k.trim())?;
        let value: f64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{k}={v}: not a number"))?;
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("{k}={v}: must be a positive number"));
        }
        if k.ends_with("_byte_rate") && value.fract() != 0.0 {
            return Err(format!("{k}={v}: bytes per second are a whole number"));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(format!("{k} is given twice"));
        }
        out.push((k.to_string(), value));
    }
    Ok(out)
}

fn known_key(k: &str) -> Result<&'static str, String> {
    QUOTA_KEYS
        .iter()
        .find(|q| **q == k)
        .copied()
        .ok_or_else(|| format!("{k}: the quota keys are {}", QUOTA_KEYS.join(", ")))
}

fn part(p: &Option<Option<String>>) -> serde_json::Value {
    match p {
        None => serde_json::Value::Null,
        Some(None) => json!("<default>"),
        Some(Some(n)) => json!(n),
    }
}

/// Runs `rill quotas`.
pub async fn run(args: QuotasArgs) -> Result<(), CliError> {
    let entity = args.entity().map_err(CliError::Usage)?;
    let named = entity.user.is_some() || entity.client_id.is_some();
    if args.describe {
        let cluster = args.connect.connect().await?;
        let found = cluster
            .describe_client_quotas(named.then_some(&entity))
            .await
            .map_err(|e| CliError::client("describing client quotas", e))?;
        match args.connect.output {
            Output::Json => {
                let quotas: Vec<serde_json::Value> = found
                    .iter()
                    .map(|q| {
                        let values: serde_json::Map<String, serde_json::Value> = q
                            .values
                            .iter()
                            .map(|(k, v)| (k.clone(), json!(v)))
                            .collect();
                        json!({
                            "user": part(&q.entity.user),
                            "client_id": part(&q.entity.client_id),
                            "values": values,
                        })
                    })
                    .collect();
                print_json(&json!({ "quotas": quotas }));
            }
            Output::Table => {
                let mut t = Table::new(&["ENTITY", "QUOTA", "VALUE"]);
                for q in &found {
                    for (k, v) in &q.values {
                        t.row(vec![q.entity.to_string(), k.clone(), v.to_string()]);
                    }
                }
                print!("{}", t.render(""));
            }
        }
        return Ok(());
    }
    if !named {
        return Err(CliError::Usage(
            "--alter needs an entity: --user/--user-defaults, --client/--client-defaults, or \
             --entity-type with --entity-name/--entity-default"
                .into(),
        ));
    }
    let set = match &args.add_config {
        Some(s) => parse_add_config(s).map_err(CliError::Usage)?,
        None => Vec::new(),
    };
    let mut remove = Vec::new();
    if let Some(d) = &args.delete_config {
        for k in d.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            remove.push(known_key(k).map_err(CliError::Usage)?.to_string());
        }
    }
    if set.is_empty() && remove.is_empty() {
        return Err(CliError::Usage(
            "--alter needs --add-config or --delete-config".into(),
        ));
    }
    if let Some(k) = remove.iter().find(|k| set.iter().any(|(s, _)| s == *k)) {
        return Err(CliError::Usage(format!("{k} is both added and deleted")));
    }
    let cluster = args.connect.connect().await?;
    let change = QuotaAlteration {
        entity: entity.clone(),
        set,
        remove,
    };
    let results = cluster
        .alter_client_quotas(std::slice::from_ref(&change), false)
        .await
        .map_err(|e| CliError::client("altering client quotas", e))?;
    for r in results {
        r.map_err(|e| CliError::client(format!("quotas of {entity}"), e))?;
    }
    match args.connect.output {
        Output::Json => print_json(&json!({
            "user": part(&entity.user),
            "client_id": part(&entity.client_id),
            "set": change.set.len(),
            "removed": change.remove.len(),
        })),
        Output::Table => println!("Completed updating quotas for {entity}."),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        q: QuotasArgs,
    }

    fn entity(args: &[&str]) -> Result<QuotaEntity, String> {
        let cli = Cli::try_parse_from(std::iter::once("rill").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.q.entity()
    }

    #[test]
    fn entities_take_kafka_configs_forms() {
        let e = entity(&["--alter", "--user", "alice", "--client-defaults"]).expect("valid");
        assert_eq!(e.to_string(), "user=alice,client-id=<default>");
        let e = entity(&[
            "--alter",
            "--entity-type",
            "clients",
            "--entity-name",
            "app",
        ])
        .expect("valid");
        assert_eq!(e.to_string(), "client-id=app");
        let e = entity(&[
            "--alter",
            "--user",
            "u",
            "--entity-type",
            "clients",
            "--entity-default",
        ])
        .expect("valid");
        assert_eq!(e.to_string(), "user=u,client-id=<default>");
        for bad in [
            &["--alter", "--entity-type", "topics", "--entity-name", "t"][..],
            &["--alter", "--entity-type", "users"][..],
            &["--alter", "--entity-name", "x"][..],
            &["--alter", "--user", ""][..],
            &[
                "--alter",
                "--user",
                "a",
                "--entity-type",
                "users",
                "--entity-name",
                "b",
            ][..],
        ] {
            assert!(entity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_config_is_checked_for_shape() {
        assert_eq!(
            parse_add_config("producer_byte_rate=1048576, request_percentage=12.5").expect("ok"),
            vec![
                ("producer_byte_rate".to_string(), 1048576.0),
                ("request_percentage".to_string(), 12.5)
            ]
        );
        for bad in [
            "producer_byte_rate",
            "producer_byte_rate=x",
            "producer_byte_rate=-1",
            "producer_byte_rate=1.5",
            "bogus=1",
            "consumer_byte_rate=1,consumer_byte_rate=2",
        ] {
            assert!(parse_add_config(bad).is_err(), "{bad}");
        }
    }
}
