//! `rill quotas`: client quotas (KIP-546) with kafka-configs.sh's forms: `--describe` (every
//! entity, or the entities the entity options name), `--alter --add-config
//! 'producer_byte_rate=1048576,request_percentage=50' --delete-config consumer_byte_rate`.
//! An entity is named as kafka-configs.sh names it: `--entity-type users|clients`, up to once
//! per type, each paired in order with the `--entity-name NAME` or `--entity-default` that
//! follows (`--entity-type users --entity-name alice --entity-type clients
//! --entity-default`), or with the shorthands `--user NAME` / `--user-defaults` and
//! `--client ID` / `--client-defaults`. As in kafka-configs.sh, `--describe` shows exactly
//! the named entity (an `--entity-type` without a name: every entity of that type) and
//! nothing with other entity types. Values are checked here for shape; the cluster's
//! refusals are shown as it words them.

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Args, FromArgMatches};
use rill_client::quotas::{
    QuotaAlteration, QuotaEntity, QuotaFilter, QuotaFilterComponent, QuotaMatch, CLIENT_ID,
    QUOTA_KEYS, USER,
};
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
    #[command(flatten)]
    entity: EntityOpts,
    /// `producer_byte_rate=N,consumer_byte_rate=N,request_percentage=P`.
    #[arg(long = "add-config", value_name = "CONFIGS")]
    add_config: Option<String>,
    /// Quota keys to remove, comma-separated.
    #[arg(long = "delete-config", value_name = "KEYS")]
    delete_config: Option<String>,
}

/// The entity options. Parsed by hand from clap's matches because kafka-configs.sh pairs
/// the n-th `--entity-type` with the n-th of `--entity-name` and `--entity-default` *as they
/// appear on the command line*, and only the matches' indices keep that order across two
/// options.
#[derive(Debug, Default, Clone, PartialEq)]
struct EntityOpts {
    /// `--entity-type` values, in order.
    types: Vec<String>,
    /// `--entity-name` (a name) and `--entity-default` (`None`), in command-line order.
    names: Vec<Option<String>>,
    user: Option<String>,
    user_defaults: bool,
    client: Option<String>,
    client_defaults: bool,
}

impl FromArgMatches for EntityOpts {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let strings = |id: &str| -> Vec<String> {
            m.get_many::<String>(id)
                .map(|v| v.cloned().collect())
                .unwrap_or_default()
        };
        let mut names: Vec<(usize, Option<String>)> = m
            .indices_of("entity_name")
            .map(|i| {
                i.zip(strings("entity_name").into_iter().map(Some))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(i) = m.indices_of("entity_default") {
            names.extend(i.map(|i| (i, None)));
        }
        names.sort_by_key(|(i, _)| *i);
        Ok(EntityOpts {
            types: strings("entity_type"),
            names: names.into_iter().map(|(_, n)| n).collect(),
            user: m.get_one::<String>("user").cloned(),
            user_defaults: m.get_flag("user_defaults"),
            client: m.get_one::<String>("client").cloned(),
            client_defaults: m.get_flag("client_defaults"),
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = EntityOpts::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for EntityOpts {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(
            Arg::new("entity_type")
                .long("entity-type")
                .value_name("users|clients")
                .action(ArgAction::Append)
                .help(
                    "kafka-configs.sh's form: `users` or `clients`, at most once each, each \
                     paired in order with an --entity-name or --entity-default",
                ),
        )
        .arg(
            Arg::new("entity_name")
                .long("entity-name")
                .value_name("NAME")
                .action(ArgAction::Append)
                .help("The name of the entity type given before it"),
        )
        .arg(
            // An Append flag of no value records each occurrence's position, which the
            // pairing needs (a counted flag keeps only the last).
            Arg::new("entity_default")
                .long("entity-default")
                .action(ArgAction::Append)
                .num_args(0)
                .default_missing_value("")
                .help("The default entity of the entity type given before it"),
        )
        .arg(
            Arg::new("user")
                .long("user")
                .value_name("NAME")
                .conflicts_with("user_defaults")
                .help(
                    "A user entity (the principal's name; ANONYMOUS on unauthenticated listeners)",
                ),
        )
        .arg(
            Arg::new("user_defaults")
                .long("user-defaults")
                .action(ArgAction::SetTrue)
                .help("The default user entity: each user without a quota of its own"),
        )
        .arg(
            Arg::new("client")
                .long("client")
                .value_name("ID")
                .conflicts_with("client_defaults")
                .help("A client-id entity"),
        )
        .arg(
            Arg::new("client_defaults")
                .long("client-defaults")
                .action(ArgAction::SetTrue)
                .help("The default client-id entity: each client id without a quota of its own"),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        EntityOpts::augment_args(cmd)
    }
}

/// Longest entity name taken (the broker's limit).
const MAX_NAME: usize = 1024;

/// One entity type the options name: `None` as the match is an `--entity-type` without a
/// name (describe only: every entity of that type).
type Named = (&'static str, Option<Option<String>>);

impl EntityOpts {
    /// The (entity type, name) pairs the options give, kafka-configs.sh's pairing: the n-th
    /// `--entity-type` with the n-th `--entity-name`/`--entity-default`. With `alter`, every
    /// type needs its name.
    fn named(&self, alter: bool) -> Result<Vec<Named>, String> {
        let checked = |n: &Option<String>| -> Result<Option<String>, String> {
            match n {
                Some(n) if n.is_empty() => Err("an entity name may not be empty".into()),
                Some(n) if n.len() > MAX_NAME => {
                    Err(format!("an entity name is at most {MAX_NAME} bytes"))
                }
                n => Ok(n.clone()),
            }
        };
        if self.names.len() > self.types.len() {
            return Err(
                "each --entity-name and --entity-default needs an --entity-type before it".into(),
            );
        }
        if alter && self.names.len() < self.types.len() {
            return Err(
                "--alter needs an --entity-name or --entity-default for each --entity-type".into(),
            );
        }
        let mut out: Vec<Named> = Vec::new();
        for (i, kind) in self.types.iter().enumerate() {
            let t = match kind.as_str() {
                "users" => USER,
                "clients" => CLIENT_ID,
                other => {
                    return Err(format!(
                        "--entity-type {other}: quotas are set on users and clients"
                    ))
                }
            };
            let name = self.names.get(i).map(checked).transpose()?;
            out.push((t, name));
        }
        for (t, name, default) in [
            (USER, &self.user, self.user_defaults),
            (CLIENT_ID, &self.client, self.client_defaults),
        ] {
            if name.is_some() || default {
                out.push((t, Some(checked(name)?)));
            }
        }
        for (i, (t, _)) in out.iter().enumerate() {
            if out[..i].iter().any(|(seen, _)| seen == t) {
                let kind = if *t == USER { "users" } else { "clients" };
                return Err(format!("the {kind} entity is given twice"));
            }
        }
        Ok(out)
    }

    /// The one entity `--alter` changes.
    fn entity(&self) -> Result<QuotaEntity, String> {
        let named = self.named(true)?;
        if named.is_empty() {
            return Err(
                "--alter needs an entity: --entity-type with --entity-name/--entity-default, \
                 --user/--user-defaults, or --client/--client-defaults"
                    .into(),
            );
        }
        QuotaEntity::from_parts(
            named
                .iter()
                .map(|(t, n)| (*t, n.as_ref().and_then(|n| n.as_deref()))),
        )
    }

    /// What `--describe` asks for: everything, or exactly the named entities (strict, as
    /// kafka-configs.sh's `ClientQuotaFilter.containsOnly`).
    fn filter(&self) -> Result<QuotaFilter, String> {
        let named = self.named(false)?;
        if named.is_empty() {
            return Ok(QuotaFilter::all());
        }
        Ok(QuotaFilter::contains_only(
            named
                .into_iter()
                .map(|(t, n)| {
                    let matching = match n {
                        None => QuotaMatch::Specified,
                        Some(None) => QuotaMatch::Default,
                        Some(Some(name)) => QuotaMatch::Exact(name),
                    };
                    QuotaFilterComponent::new(t, matching)
                })
                .collect(),
        ))
    }
}

impl QuotasArgs {
    /// The change this command attempts, if any (for the audit trail: the target is the
    /// entity, the record's argv has the values).
    pub fn change(&self) -> Option<Change> {
        if !self.alter {
            return None;
        }
        let target = self
            .entity
            .entity()
            .map(|e| e.to_string())
            .unwrap_or_default();
        Some(Change::new("alter-client-quotas", target, &self.connect))
    }
}

/// `key=value,...` into (key, value) pairs checked for shape: a known key, a positive
/// number. The rest (a fractional byte rate, a value too large for the cluster) is the
/// cluster's to refuse, in its own words.
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

/// The `--delete-config` keys, checked.
fn parse_delete_config(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let k = known_key(k)?.to_string();
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// The quotas as JSON: `{"quotas": [{"user", "client_id", "values": {key: value}}]}`, a
/// part `null` when the entity has none and `"<default>"` for the default entity.
fn quotas_json(found: &[rill_client::quotas::EntityQuotas]) -> serde_json::Value {
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
    json!({ "quotas": quotas })
}

/// Runs `rill quotas`.
pub async fn run(args: QuotasArgs) -> Result<(), CliError> {
    if args.describe {
        if args.add_config.is_some() || args.delete_config.is_some() {
            return Err(CliError::Usage(
                "--add-config and --delete-config go with --alter".into(),
            ));
        }
        let filter = args.entity.filter().map_err(CliError::Usage)?;
        let cluster = args.connect.connect().await?;
        let found = cluster
            .describe_client_quotas(&filter)
            .await
            .map_err(|e| CliError::client("describing client quotas", e))?;
        match args.connect.output {
            Output::Json => print_json(&quotas_json(&found)),
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
    let entity = args.entity.entity().map_err(CliError::Usage)?;
    let set = match &args.add_config {
        Some(s) => parse_add_config(s).map_err(CliError::Usage)?,
        None => Vec::new(),
    };
    let remove = match &args.delete_config {
        Some(s) => parse_delete_config(s).map_err(CliError::Usage)?,
        None => Vec::new(),
    };
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

    fn parse(args: &[&str]) -> Result<QuotasArgs, String> {
        Cli::try_parse_from(std::iter::once("rill").chain(args.iter().copied()))
            .map(|c| c.q)
            .map_err(|e| e.to_string())
    }

    fn entity(args: &[&str]) -> Result<QuotaEntity, String> {
        parse(args)?.entity.entity()
    }

    fn filter(args: &[&str]) -> Result<QuotaFilter, String> {
        parse(args)?.entity.filter()
    }

    #[test]
    fn entity_types_pair_with_names_in_command_line_order() {
        // kafka-configs.sh's own example shape: a name for the first type, the default for
        // the second.
        let e = entity(&[
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
            "--entity-type",
            "clients",
            "--entity-default",
        ])
        .expect("valid");
        assert_eq!(e.to_string(), "user=alice,client-id=<default>");
        // The other way round: the default first, then the name.
        let e = entity(&[
            "--alter",
            "--entity-type",
            "users",
            "--entity-default",
            "--entity-type",
            "clients",
            "--entity-name",
            "app",
        ])
        .expect("valid");
        assert_eq!(e.to_string(), "user=<default>,client-id=app");
        // Types first, then their names, still paired in order.
        let e = entity(&[
            "--alter",
            "--entity-type",
            "clients",
            "--entity-type",
            "users",
            "--entity-name",
            "app",
            "--entity-name",
            "bob",
        ])
        .expect("valid");
        assert_eq!(e.to_string(), "user=bob,client-id=app");
    }

    #[test]
    fn entities_take_the_shorthands_too() {
        let e = entity(&["--alter", "--user", "alice", "--client-defaults"]).expect("valid");
        assert_eq!(e.to_string(), "user=alice,client-id=<default>");
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
    }

    #[test]
    fn bad_entities_are_refused() {
        let long = "x".repeat(MAX_NAME + 1);
        for bad in [
            &["--alter", "--entity-type", "topics", "--entity-name", "t"][..],
            &["--alter", "--entity-type", "users"][..],
            &["--alter", "--entity-name", "x"][..],
            &["--alter", "--entity-default"][..],
            &["--alter", "--user", ""][..],
            &["--alter", "--user", &long][..],
            &["--alter"][..],
            &[
                "--alter",
                "--user",
                "a",
                "--entity-type",
                "users",
                "--entity-name",
                "b",
            ][..],
            &[
                "--alter",
                "--entity-type",
                "clients",
                "--entity-name",
                "a",
                "--entity-type",
                "clients",
                "--entity-default",
            ][..],
        ] {
            assert!(entity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn describe_filters_are_strict_as_kafka_configs() {
        assert_eq!(filter(&["--describe"]).expect("valid"), QuotaFilter::all());
        let f = filter(&["--describe", "--entity-type", "users"]).expect("valid");
        assert_eq!(
            f,
            QuotaFilter::contains_only(vec![QuotaFilterComponent::new(
                USER,
                QuotaMatch::Specified
            )])
        );
        let f = filter(&[
            "--describe",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
            "--entity-type",
            "clients",
        ])
        .expect("valid");
        assert_eq!(
            f,
            QuotaFilter::contains_only(vec![
                QuotaFilterComponent::new(USER, QuotaMatch::Exact("alice".into())),
                QuotaFilterComponent::new(CLIENT_ID, QuotaMatch::Specified),
            ])
        );
        let f = filter(&["--describe", "--client-defaults"]).expect("valid");
        assert_eq!(
            f,
            QuotaFilter::contains_only(vec![QuotaFilterComponent::new(
                CLIENT_ID,
                QuotaMatch::Default
            )])
        );
        assert!(filter(&["--describe", "--entity-name", "x"]).is_err());
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
        assert_eq!(
            parse_add_config("producer_byte_rate=1048576,consumer_byte_rate=2097152").expect("ok"),
            vec![
                ("producer_byte_rate".to_string(), 1048576.0),
                ("consumer_byte_rate".to_string(), 2097152.0)
            ]
        );
        for (bad, why) in [
            ("producer_byte_rate", "expected key=value"),
            ("producer_byte_rate=x", "not a number"),
            ("producer_byte_rate=-1", "positive"),
            ("producer_byte_rate=0", "positive"),
            ("producer_byte_rate=NaN", "positive"),
            ("bogus=1", "the quota keys are"),
            ("consumer_byte_rate=1,consumer_byte_rate=2", "twice"),
        ] {
            let e = parse_add_config(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn delete_config_takes_known_keys() {
        assert_eq!(
            parse_delete_config("producer_byte_rate, consumer_byte_rate,producer_byte_rate")
                .expect("ok"),
            vec!["producer_byte_rate", "consumer_byte_rate"]
        );
        assert!(parse_delete_config("producer_byte_rate,bogus").is_err());
    }
}
