//! `/acls`: the cluster's ACLs, read from the cluster on each visit (DescribeAcls: the
//! collector does not keep them, and a page must show a change at once), filtered here;
//! adding one (checked by `ops::acl::parse`, as `rill acls` checks it), deleting one
//! (a second, confirming POST), and "what may principal P do on resource R", answered by
//! the broker's own decision code (`AclIndex::decide`) over the cluster's ACLs and a
//! broker's `super.users` / `allow.everyone.if.no.acl.found`.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_broker::metadata::acl::{
    host_string, operations_for, AclBinding, AclIndex, AclOperation, AuthorizerSettings, Decision,
    ResourceType, CLUSTER_NAME, WILDCARD,
};
use rill_client::{AclFilter, ClientError};
use rill_web::views::{AclCheck, AclCheckQuery, AclCheckRow, AclQuery, AclRow, AclsPage};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit, refresh};
use crate::console::http::{
    done, error_page, form_state, json_error, layout, lenient, respond, wants_json, AppState,
    ConsoleError, FormOrJson,
};
use crate::console::state::Console;
use crate::ops::acl::{self as acl_ops, AclInput};

/// Kafka's SECURITY_DISABLED: the cluster has no authorizer.
const SECURITY_DISABLED: i16 = 54;
/// Kafka's CLUSTER_AUTHORIZATION_FAILED.
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// Query of GET `/acls`: the list's filters and the permission check's inputs.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    permission: String,
    #[serde(default)]
    check_principal: String,
    #[serde(default)]
    check_resource_type: String,
    #[serde(default)]
    check_resource: String,
    #[serde(default)]
    check_host: String,
    notice: Option<String>,
}

/// GET `/acls`.
pub async fn list(State(c): AppState, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let notice = q.notice.clone();
    match page(&c, &q, FormState::default(), None, notice).await {
        Ok(view) => respond(&headers, StatusCode::OK, &view),
        Err((field, msg)) => error_page(&c, &headers, StatusCode::BAD_REQUEST, &field, &msg),
    }
}

/// A filter value: empty and `any` mean no filter.
fn chosen(v: &str, offered: &[&str], field: &str) -> Result<String, (String, String)> {
    let v = v.trim().to_ascii_lowercase();
    if v.is_empty() {
        return Ok("any".into());
    }
    if offered.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err((field.to_string(), format!("unknown {field} '{v}'")))
    }
}

/// An operation filter in any of Kafka's spellings (`DescribeConfigs`, `DESCRIBE_CONFIGS`)
/// as the list offers it (`describe_configs`).
fn operation_filter(v: &str) -> String {
    match AclOperation::parse(v.trim()) {
        Some(AclOperation::Any) | None => v.to_string(),
        Some(op) => op.name().to_ascii_lowercase(),
    }
}

/// The row a binding renders as.
fn row(b: &AclBinding) -> AclRow {
    AclRow {
        resource_type: b.resource_type.name().into(),
        resource_name: b.resource_name.clone(),
        pattern_type: b.pattern_type.name().into(),
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: b.operation.name().into(),
        permission: b.permission.name().into(),
    }
}

/// Why the ACLs could not be read, for people.
fn list_error(e: &ClientError) -> String {
    match e {
        ClientError::Kafka { code, .. } if *code == SECURITY_DISABLED => {
            "The cluster has no authorizer (authorizer.class.name is not set): ACLs are neither \
             stored nor enforced, and every client may do everything."
                .into()
        }
        ClientError::Kafka { code, .. } if *code == CLUSTER_AUTHORIZATION_FAILED => {
            "The console's principal may not describe ACLs: it needs DESCRIBE on the cluster \
             (or to be in super.users)."
                .into()
        }
        e => format!("The ACLs could not be read: {e}"),
    }
}

/// Every ACL of the cluster, sorted, or why not.
async fn all_acls(c: &Console) -> Result<Vec<AclBinding>, ClientError> {
    let any = AclFilter {
        resource_type: ResourceType::Any.code(),
        pattern_type: rill_broker::metadata::acl::PatternType::Any.code(),
        operation: AclOperation::Any.code(),
        permission: rill_broker::metadata::acl::AclPermissionType::Any.code(),
        ..AclFilter::default()
    };
    let mut out: Vec<AclBinding> = c
        .cluster()
        .describe_acls(&any)
        .await?
        .iter()
        .filter_map(acl_ops::binding)
        .collect();
    out.sort_by(|a, b| {
        (&a.principal, a.resource_type, &a.resource_name, a.operation).cmp(&(
            &b.principal,
            b.resource_type,
            &b.resource_name,
            b.operation,
        ))
    });
    Ok(out)
}

async fn page(
    c: &Console,
    q: &ListQuery,
    form: FormState,
    pending_delete: Option<AclRow>,
    notice: Option<String>,
) -> Result<AclsPage, (String, String)> {
    let query = AclQuery {
        principal: q.principal.trim().to_string(),
        resource_type: chosen(&q.resource_type, &AclQuery::RESOURCE_TYPES, "resource_type")?,
        resource: q.resource.trim().to_string(),
        operation: chosen(
            &operation_filter(&q.operation),
            &AclQuery::OPERATIONS,
            "operation",
        )?,
        permission: chosen(&q.permission, &AclQuery::PERMISSIONS, "permission")?,
    };
    let check_query = AclCheckQuery {
        principal: q.check_principal.trim().to_string(),
        resource_type: if q.check_resource_type.trim().is_empty() {
            "topic".into()
        } else {
            q.check_resource_type.trim().to_ascii_lowercase()
        },
        resource: q.check_resource.trim().to_string(),
        host: q.check_host.trim().to_string(),
    };
    let (acls, error) = match all_acls(c).await {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(list_error(&e))),
    };
    let rt = ResourceType::parse(&query.resource_type).filter(|_| query.resource_type != "any");
    let op = AclOperation::parse(&query.operation).filter(|_| query.operation != "any");
    let principal_needle = query.principal.to_lowercase();
    let resource_needle = query.resource.to_lowercase();
    let matching: Vec<AclRow> = acls
        .iter()
        .filter(|b| {
            principal_needle.is_empty() || b.principal.to_lowercase().contains(&principal_needle)
        })
        .filter(|b| rt.is_none_or(|t| b.resource_type == t))
        .filter(|b| {
            resource_needle.is_empty() || b.resource_name.to_lowercase().contains(&resource_needle)
        })
        .filter(|b| op.is_none_or(|o| b.operation == o))
        .filter(|b| {
            query.permission == "any" || b.permission.name().eq_ignore_ascii_case(&query.permission)
        })
        .map(row)
        .collect();
    let count = matching.len();
    let shown: Vec<AclRow> = matching.into_iter().take(AclsPage::MAX_ROWS).collect();
    let check = if check_query.principal.is_empty() || error.is_some() {
        None
    } else {
        Some(check(c, &check_query, &acls).await?)
    };
    Ok(AclsPage {
        layout: layout(c, "ACLs", "acls", notice),
        query,
        total: acls.len(),
        matching: count,
        acls: shown,
        error,
        check,
        check_query,
        pending_delete,
        form,
    })
}

/// The authorizer settings a broker reports, or why they are unknown.
async fn settings(c: &Console) -> Result<(i32, Option<AuthorizerSettings>), String> {
    let broker = c
        .shared
        .snapshot()
        .brokers
        .iter()
        .map(|b| b.id)
        .min()
        .ok_or_else(|| "no broker is known yet".to_string())?;
    let entries = c
        .cluster()
        .describe_broker_configs(broker)
        .await
        .map_err(|e| format!("broker {broker}'s configs could not be read: {e}"))?;
    let raw: BTreeMap<String, String> = entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect();
    let cfg = rill_broker::config::security::authorizer_config(&raw)
        .map_err(|e| format!("broker {broker}'s authorizer settings do not parse: {e}"))?;
    Ok((broker, cfg.as_ref().map(AuthorizerSettings::from)))
}

/// Why a decision went the way it did, for people.
fn reason(d: &Decision<'_>, settings_known: bool) -> String {
    let acl = |b: &AclBinding| {
        format!(
            "{} {} {} on {} {} ({}) from {}",
            b.permission.name(),
            b.principal,
            b.operation.name(),
            b.resource_type.name(),
            b.resource_name,
            b.pattern_type.name(),
            b.host
        )
    };
    match d {
        Decision::SuperUser => "a super user (super.users)".into(),
        Decision::DeniedBy(b) => format!("denied by {}", acl(b)),
        Decision::AllowedBy(b) => format!("allowed by {}", acl(b)),
        Decision::NoAcls { allowed } if settings_known => {
            format!("no ACL names this resource: allow.everyone.if.no.acl.found={allowed}")
        }
        Decision::NoAcls { .. } => {
            "no ACL names this resource: allow.everyone.if.no.acl.found decides (unknown)".into()
        }
        Decision::NoMatchingAllow => "no ALLOW names this principal, host and operation".into(),
    }
}

/// "What may P do on R": every operation of R's type, decided as the brokers decide.
async fn check(
    c: &Console,
    q: &AclCheckQuery,
    acls: &[AclBinding],
) -> Result<AclCheck, (String, String)> {
    let bad = |m: &str| ("check_principal".to_string(), m.to_string());
    match q.principal.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
        _ => return Err(bad("the principal is Type:name, e.g. User:alice")),
    }
    let rt = ResourceType::parse(&q.resource_type)
        .filter(|t| {
            matches!(
                t,
                ResourceType::Topic
                    | ResourceType::Group
                    | ResourceType::Cluster
                    | ResourceType::TransactionalId
            )
        })
        .ok_or_else(|| {
            (
                "check_resource_type".to_string(),
                "topic, group, cluster or transactional_id".to_string(),
            )
        })?;
    let name = if rt == ResourceType::Cluster {
        CLUSTER_NAME.to_string()
    } else if q.resource.is_empty() {
        return Err(("check_resource".into(), "name the resource to check".into()));
    } else {
        q.resource.clone()
    };
    let host = match q.host.as_str() {
        "" | WILDCARD => None,
        h => Some(
            h.parse::<std::net::IpAddr>()
                .map(host_string)
                .map_err(|_| {
                    (
                        "check_host".to_string(),
                        format!("host '{h}': an IP address, or empty for any host"),
                    )
                })?,
        ),
    };
    let index = AclIndex::new(acls.iter());
    let (settings, note, known) = match settings(c).await {
        Ok((broker, Some(s))) => (
            s,
            format!("decided as broker {broker}'s authorizer decides (its super.users and allow.everyone.if.no.acl.found)"),
            true,
        ),
        // The cluster answered DescribeAcls, so some broker has an authorizer: one that
        // reports none disagrees with it, and its word decides nothing.
        Ok((broker, None)) => (
            AuthorizerSettings::default(),
            format!("broker {broker} reports no authorizer.class.name although the cluster keeps ACLs: answers that depend on super.users or allow.everyone.if.no.acl.found are unknown"),
            false,
        ),
        Err(why) => (
            AuthorizerSettings::default(),
            format!("{why}: answers that depend on super.users or allow.everyone.if.no.acl.found are unknown"),
            false,
        ),
    };
    // Without a host only `*` ACLs apply: an empty host matches no host-specific one.
    let host_text = host.clone().unwrap_or_default();
    let rows = operations_for(rt)
        .iter()
        .filter(|o| **o != AclOperation::All)
        .map(|o| {
            let d = index.decide(&settings, &q.principal, &host_text, *o, rt, &name);
            AclCheckRow {
                operation: o.name().into(),
                // Without the settings only an ALLOW by an ACL is certain: a DENY may be a
                // super user's, "no ACL" is allow.everyone.if.no.acl.found's.
                allowed: (known || matches!(d, Decision::AllowedBy(_))).then(|| d.allowed()),
                reason: reason(&d, known),
            }
        })
        .collect();
    Ok(AclCheck {
        principal: q.principal.clone(),
        resource_type: rt.name().into(),
        resource: name,
        host: host.unwrap_or_else(|| "any host (only * ACLs counted)".into()),
        rows,
        note,
    })
}

/// Body of POST `/acls`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct CreateInput {
    #[serde(default, deserialize_with = "lenient")]
    principal: String,
    #[serde(default, deserialize_with = "lenient")]
    permission: String,
    #[serde(default, deserialize_with = "lenient")]
    operation: String,
    #[serde(default, deserialize_with = "lenient")]
    resource_type: String,
    #[serde(default, deserialize_with = "lenient")]
    resource_name: String,
    #[serde(default, deserialize_with = "lenient")]
    pattern_type: String,
    #[serde(default, deserialize_with = "lenient")]
    host: String,
    /// Only on `/acls/delete`: `yes` once confirmed.
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

impl CreateInput {
    fn acl_input(&self) -> AclInput<'_> {
        AclInput {
            principal: &self.principal,
            permission: &self.permission,
            operation: &self.operation,
            resource_type: &self.resource_type,
            resource_name: &self.resource_name,
            pattern_type: &self.pattern_type,
            host: &self.host,
        }
    }

    fn values(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("principal".into(), self.principal.clone()),
            ("permission".into(), self.permission.clone()),
            ("operation".into(), self.operation.clone()),
            ("resource_type".into(), self.resource_type.clone()),
            ("resource_name".into(), self.resource_name.clone()),
            ("pattern_type".into(), self.pattern_type.clone()),
            ("host".into(), self.host.clone()),
        ])
    }

    /// What the audit log records as the target.
    fn target(&self) -> String {
        format!(
            "{}:{}",
            self.resource_type.trim().to_ascii_lowercase(),
            self.resource_name.trim()
        )
    }
}

fn parsed(input: &CreateInput) -> Result<AclBinding, ConsoleError> {
    acl_ops::parse(&input.acl_input()).map_err(|e| ConsoleError::invalid(e.field, e.message))
}

/// Re-renders the page with `e` beside `form`'s field (or as JSON).
async fn failed(
    c: &Console,
    headers: &HeaderMap,
    form: &str,
    e: ConsoleError,
    values: BTreeMap<String, String>,
) -> Response {
    let (status, field) = e.status_and_field(&|_, _| String::new());
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    let state = form_state(form, field, e.to_string(), values);
    match page(c, &ListQuery::default(), state, None, None).await {
        Ok(view) => respond(headers, status, &view),
        Err((f, m)) => error_page(c, headers, StatusCode::BAD_REQUEST, &f, &m),
    }
}

/// POST `/acls`: adds one ACL.
pub async fn create(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<CreateInput>,
) -> Response {
    let result = add(&c, &input).await;
    audit(&c, "create-acl", &input.target(), &input, &result).await;
    match result {
        Ok(b) => {
            refresh(&c).await;
            let r = row(&b);
            done(
                &headers,
                &format!(
                    "/acls?principal={}",
                    crate::console::http::encode(&b.principal)
                ),
                &format!(
                    "ACL added: {} {} {} on {} {}",
                    r.permission, r.principal, r.operation, r.resource_type, r.resource_name
                ),
                json!({ "created": r }),
            )
        }
        Err(e) => failed(&c, &headers, "create-acl", e, input.values()).await,
    }
}

async fn add(c: &Console, input: &CreateInput) -> Result<AclBinding, ConsoleError> {
    let b = parsed(input)?;
    let results = c.cluster().create_acls(&[acl_ops::wire(&b)]).await?;
    for r in results {
        r?;
    }
    Ok(b)
}

/// POST `/acls/delete`: without `confirm=yes`, the page asking to confirm; with it, deletes
/// exactly that ACL.
pub async fn delete(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<CreateInput>,
) -> Response {
    // The ACL as listed, not as the create form would normalise it: what is stored.
    let b = match acl_ops::exact(&input.acl_input()) {
        Ok(b) => b,
        Err(e) => {
            let e = ConsoleError::invalid("", e.message);
            return failed(&c, &headers, "delete-acl", e, BTreeMap::new()).await;
        }
    };
    if input.confirm != "yes" {
        if wants_json(&headers) {
            return respond_json(json!({ "awaiting_confirmation": true, "acl": row(&b) }));
        }
        return match page(
            &c,
            &ListQuery::default(),
            FormState::default(),
            Some(row(&b)),
            None,
        )
        .await
        {
            Ok(view) => respond(&headers, StatusCode::OK, &view),
            Err((f, m)) => error_page(&c, &headers, StatusCode::BAD_REQUEST, &f, &m),
        };
    }
    let result = remove(&c, &b).await;
    audit(&c, "delete-acl", &input.target(), &input, &result).await;
    match result {
        Ok(()) => {
            refresh(&c).await;
            let r = row(&b);
            done(
                &headers,
                "/acls",
                &format!(
                    "ACL deleted: {} {} {} on {} {}",
                    r.permission, r.principal, r.operation, r.resource_type, r.resource_name
                ),
                json!({ "deleted": r }),
            )
        }
        Err(e) => {
            // The delete form has no fields to point at: the message goes above the list.
            let e = match e {
                ConsoleError::Invalid { message, .. } => ConsoleError::invalid("", message),
                e => e,
            };
            failed(&c, &headers, "delete-acl", e, BTreeMap::new()).await
        }
    }
}

fn respond_json(body: serde_json::Value) -> Response {
    use axum::response::IntoResponse;
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn remove(c: &Console, b: &AclBinding) -> Result<(), ConsoleError> {
    let a = acl_ops::wire(b);
    let filter = AclFilter {
        resource_type: a.resource_type,
        resource_name: Some(a.resource_name.clone()),
        pattern_type: a.pattern_type,
        principal: Some(a.principal.clone()),
        host: Some(a.host.clone()),
        operation: a.operation,
        permission: a.permission,
    };
    let mut removed = 0;
    for r in c.cluster().delete_acls(&[filter]).await? {
        removed += r?.len();
    }
    if removed == 0 {
        return Err(ConsoleError::NotFound(
            "no such ACL (was it deleted already?)".into(),
        ));
    }
    Ok(())
}
