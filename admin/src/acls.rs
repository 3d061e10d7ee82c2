//! `rill acls`: ACLs with kafka-acls.sh's flags: `--add`, `--remove` (with `--force`),
//! `--list`; `--allow-principal`/`--deny-principal`, `--allow-host`/`--deny-host`,
//! `--operation` (repeatable), `--producer`/`--consumer` shorthands; resources `--topic`,
//! `--group`, `--cluster`, `--transactional-id`, with `--resource-pattern-type`.

use clap::{ArgGroup, Args};
use rill_broker::metadata::acl::{
    AclOperation, AclPermissionType, PatternType, ResourceType, CLUSTER_NAME,
};
use rill_client::{Acl, AclFilter};
use serde_json::json;

use crate::cli::{print_json, Change, CliError, ConnectArgs, Output, Table};

/// Arguments of `rill acls`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["add", "remove", "list"])))]
pub struct AclsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Add ACLs.
    #[arg(long)]
    add: bool,
    /// Remove the ACLs matching the flags (needs --force: it cannot be undone).
    #[arg(long)]
    remove: bool,
    /// List ACLs (of the given resource and --principal, or all).
    #[arg(long)]
    list: bool,
    /// Confirm --remove.
    #[arg(long)]
    force: bool,
    /// Principal to allow (`User:alice`); repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// Principal to deny; repeatable.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// Hosts for the allow principals (default `*`).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// Hosts for the deny principals (default `*`).
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_host: Vec<String>,
    /// Operation (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All); repeatable.
    #[arg(long, value_name = "OPERATION")]
    operation: Vec<String>,
    /// Producer shorthand: WRITE, DESCRIBE and CREATE on the topics.
    #[arg(long)]
    producer: bool,
    /// Consumer shorthand: READ and DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    consumer: bool,
    /// Topic name or prefix (`*` for all); repeatable.
    #[arg(long, value_name = "TOPIC")]
    topic: Vec<String>,
    /// Consumer group name or prefix; repeatable.
    #[arg(long, value_name = "GROUP")]
    group: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// Transactional id; repeatable.
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_id: Vec<String>,
    /// literal (default) or prefixed; for --list and --remove also any or match.
    #[arg(long = "resource-pattern-type", value_name = "TYPE")]
    resource_pattern_type: Option<String>,
    /// --list only the ACLs of this principal.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Option<String>,
}

impl AclsArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        if self.list {
            return None;
        }
        let target = self
            .topic
            .first()
            .map(|t| format!("topic:{t}"))
            .or_else(|| self.group.first().map(|g| format!("group:{g}")))
            .unwrap_or_else(|| "cluster".into());
        let action = if self.add { "add-acls" } else { "remove-acls" };
        Some(Change::new(action, target, &self.connect))
    }

    /// (type, name) of every resource named on the command line.
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out: Vec<(ResourceType, String)> = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        out
    }
}

fn usage(m: impl Into<String>) -> CliError {
    CliError::Usage(m.into())
}

fn pattern(args: &AclsArgs, default: PatternType) -> Result<PatternType, CliError> {
    match &args.resource_pattern_type {
        None => Ok(default),
        Some(p) => PatternType::parse(p)
            .filter(|p| !matches!(p, PatternType::Unknown))
            .ok_or_else(|| {
                usage(format!(
                    "--resource-pattern-type {p}: literal, prefixed, match or any"
                ))
            }),
    }
}

fn principal_ok(p: &str) -> Result<(), CliError> {
    match p.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok(()),
        _ => Err(usage(format!(
            "principal {p:?}: expected Type:name, e.g. User:alice"
        ))),
    }
}

/// The ACLs `--add` would create (also what `--remove` matches). For `--add` each is checked
/// as the console checks it (`checked`); `--remove` keeps what was typed, so it can name any
/// ACL the cluster holds, however it was stored.
fn bindings(args: &AclsArgs, pt: PatternType, checked: bool) -> Result<Vec<Acl>, CliError> {
    let resources = args.resources();
    if resources.is_empty() {
        return Err(usage(
            "name a resource: --topic, --group, --cluster or --transactional-id",
        ));
    }
    let mut ops: Vec<(ResourceType, AclOperation)> = Vec::new();
    for o in &args.operation {
        let op = AclOperation::parse(o)
            .filter(|o| !matches!(o, AclOperation::Any | AclOperation::Unknown))
            .ok_or_else(|| usage(format!("--operation {o}: unknown operation")))?;
        for (rt, _) in &resources {
            ops.push((*rt, op));
        }
    }
    if args.producer {
        for op in [
            AclOperation::Write,
            AclOperation::Describe,
            AclOperation::Create,
        ] {
            ops.push((ResourceType::Topic, op));
        }
    }
    if args.consumer {
        for op in [AclOperation::Read, AclOperation::Describe] {
            ops.push((ResourceType::Topic, op));
        }
        ops.push((ResourceType::Group, AclOperation::Read));
    }
    if ops.is_empty() {
        return Err(usage("give --operation, --producer or --consumer"));
    }
    let mut who: Vec<(String, AclPermissionType, Vec<String>)> = Vec::new();
    for p in &args.allow_principal {
        principal_ok(p)?;
        let hosts = if args.allow_host.is_empty() {
            vec!["*".into()]
        } else {
            args.allow_host.clone()
        };
        who.push((p.clone(), AclPermissionType::Allow, hosts));
    }
    for p in &args.deny_principal {
        principal_ok(p)?;
        let hosts = if args.deny_host.is_empty() {
            vec!["*".into()]
        } else {
            args.deny_host.clone()
        };
        who.push((p.clone(), AclPermissionType::Deny, hosts));
    }
    if who.is_empty() {
        return Err(usage("give --allow-principal or --deny-principal"));
    }
    let mut out = Vec::new();
    for (rt, name) in &resources {
        for (ort, op) in &ops {
            if ort != rt {
                continue;
            }
            for (principal, perm, hosts) in &who {
                for host in hosts {
                    if checked {
                        let b = crate::ops::acl::parse(&crate::ops::acl::AclInput {
                            principal,
                            permission: perm.name(),
                            operation: op.name(),
                            resource_type: rt.name(),
                            resource_name: name,
                            pattern_type: pt.name(),
                            host,
                        })
                        .map_err(|e| usage(e.message))?;
                        let acl = crate::ops::acl::wire(&b);
                        if !out.contains(&acl) {
                            out.push(acl);
                        }
                        continue;
                    }
                    let acl = Acl {
                        resource_type: rt.code(),
                        resource_name: name.clone(),
                        pattern_type: if *rt == ResourceType::Cluster {
                            PatternType::Literal.code()
                        } else {
                            pt.code()
                        },
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: op.code(),
                        permission: perm.code(),
                    };
                    if !out.contains(&acl) {
                        out.push(acl);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Runs `rill acls`.
pub async fn run(args: AclsArgs) -> Result<(), CliError> {
    if args.list {
        let pt = pattern(&args, PatternType::Any)?;
        let resources = args.resources();
        let filters: Vec<AclFilter> = if resources.is_empty() {
            vec![AclFilter {
                resource_type: ResourceType::Any.code(),
                pattern_type: PatternType::Any.code(),
                principal: args.principal.clone(),
                operation: AclOperation::Any.code(),
                permission: AclPermissionType::Any.code(),
                ..AclFilter::default()
            }]
        } else {
            resources
                .iter()
                .map(|(rt, name)| AclFilter {
                    resource_type: rt.code(),
                    resource_name: Some(name.clone()),
                    pattern_type: pt.code(),
                    principal: args.principal.clone(),
                    operation: AclOperation::Any.code(),
                    permission: AclPermissionType::Any.code(),
                    ..AclFilter::default()
                })
                .collect()
        };
        let cluster = args.connect.connect().await?;
        let mut all = Vec::new();
        for f in &filters {
            all.extend(
                cluster
                    .describe_acls(f)
                    .await
                    .map_err(|e| CliError::client("listing ACLs", e))?,
            );
        }
        print_acls(&args, &all);
        return Ok(());
    }
    if args.remove && !args.force {
        return Err(usage(
            "--remove deletes ACLs and cannot be undone: run it again with --force",
        ));
    }
    let pt = pattern(&args, PatternType::Literal)?;
    if args.add && !matches!(pt, PatternType::Literal | PatternType::Prefixed) {
        return Err(usage(
            "--add takes --resource-pattern-type literal or prefixed",
        ));
    }
    let acls = bindings(&args, pt, args.add)?;
    let cluster = args.connect.connect().await?;
    if args.add {
        let results = cluster
            .create_acls(&acls)
            .await
            .map_err(|e| CliError::client("adding ACLs", e))?;
        for (acl, r) in acls.iter().zip(results) {
            r.map_err(|e| CliError::client(describe(acl), e))?;
        }
        if args.connect.output == Output::Table {
            println!("Added {} ACL(s):", acls.len());
        }
        print_acls(&args, &acls);
    } else {
        let filters: Vec<AclFilter> = acls
            .iter()
            .map(|a| AclFilter {
                resource_type: a.resource_type,
                resource_name: Some(a.resource_name.clone()),
                pattern_type: a.pattern_type,
                principal: Some(a.principal.clone()),
                host: Some(a.host.clone()),
                operation: a.operation,
                permission: a.permission,
            })
            .collect();
        let results = cluster
            .delete_acls(&filters)
            .await
            .map_err(|e| CliError::client("removing ACLs", e))?;
        let mut removed = Vec::new();
        for r in results {
            removed.extend(r.map_err(|e| CliError::client("removing ACLs", e))?);
        }
        if args.connect.output == Output::Table {
            println!("Removed {} ACL(s):", removed.len());
        }
        print_acls(&args, &removed);
    }
    Ok(())
}

fn names(a: &Acl) -> [String; 7] {
    let n = |s: Option<&'static str>| s.unwrap_or("UNKNOWN").to_string();
    [
        n(ResourceType::from_code(a.resource_type).map(|r| r.name())),
        a.resource_name.clone(),
        n(PatternType::from_code(a.pattern_type).map(|p| p.name())),
        a.principal.clone(),
        a.host.clone(),
        n(AclOperation::from_code(a.operation).map(|o| o.name())),
        n(AclPermissionType::from_code(a.permission).map(|p| p.name())),
    ]
}

fn describe(a: &Acl) -> String {
    let [rt, name, pt, principal, host, op, perm] = names(a);
    format!("{perm} {principal} {op} on {rt} {name} ({pt}) from {host}")
}

fn print_acls(args: &AclsArgs, acls: &[Acl]) {
    match args.connect.output {
        Output::Json => print_json(&json!({
            "acls": acls.iter().map(|a| {
                let [rt, name, pt, principal, host, op, perm] = names(a);
                json!({"resource_type": rt, "resource_name": name, "pattern_type": pt,
                       "principal": principal, "host": host, "operation": op, "permission": perm})
            }).collect::<Vec<_>>()
        })),
        Output::Table => {
            let mut t = Table::new(&[
                "RESOURCE",
                "NAME",
                "PATTERN",
                "PRINCIPAL",
                "HOST",
                "OPERATION",
                "PERMISSION",
            ]);
            for a in acls {
                t.row(names(a).to_vec());
            }
            print!("{}", t.render(""));
        }
    }
}
