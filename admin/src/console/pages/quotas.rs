//! `/quotas`: client quotas (KIP-546). The entities are read from the cluster on each visit
//! (DescribeClientQuotas, every user / client-id entity); a form sets values of one entity
//! (AlterClientQuotas; an empty value leaves that key as it is), and an entity's quotas are
//! removed after its name is typed again. The cluster's refusals are shown as it words them,
//! beside the field they name.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rill_client::quotas::{EntityQuotas, QuotaAlteration, QuotaEntity, QuotaFilter};
use rill_web::views::{QuotaPartView, QuotaRow, QuotasPage, QUOTA_COLUMNS};
use rill_web::FormState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use crate::console::http::{
    done, error_page, form_state, json_error, layout, lenient, respond, wants_json, AppState,
    ConsoleError, FormOrJson, Notice,
};
use crate::console::state::Console;

/// Longest user name or client id the forms take (bounded input; the broker's limit, as
/// `rill quotas` takes).
const MAX_ENTITY_NAME: usize = 1024;
/// How long a change may take to show in a describe before the page is shown anyway (the
/// node asked next may not have applied the controller's record yet).
const SETTLE: Duration = Duration::from_secs(3);

/// GET `/quotas`.
pub async fn list(
    State(c): AppState,
    headers: HeaderMap,
    axum::extract::Query(n): axum::extract::Query<Notice>,
) -> Response {
    let view = page(&c, FormState::default(), n.notice).await;
    respond(&headers, StatusCode::OK, &view)
}

fn part(p: &Option<Option<String>>) -> Option<QuotaPartView> {
    p.as_ref().map(|n| QuotaPartView {
        default: n.is_none(),
        name: n.clone(),
    })
}

fn row(q: EntityQuotas) -> QuotaRow {
    QuotaRow {
        user: part(&q.entity.user),
        client_id: part(&q.entity.client_id),
        entity: q.entity.to_string(),
        values: QUOTA_COLUMNS.iter().map(|k| q.get(k)).collect(),
    }
}

async fn page(c: &Console, form: FormState, notice: Option<String>) -> QuotasPage {
    let (quotas, error) = match c
        .cluster()
        .describe_client_quotas(&QuotaFilter::all())
        .await
    {
        Ok(found) => (found.into_iter().map(row).collect(), None),
        Err(e) => (
            Vec::new(),
            Some(format!("The client quotas could not be read: {e}")),
        ),
    };
    QuotasPage {
        layout: layout(c, "Quotas", "quotas", notice),
        quotas,
        error,
        keys: QUOTA_COLUMNS.iter().map(|k| k.to_string()).collect(),
        form,
    }
}

/// The entity fields both forms carry. `*_kind` is `name`, `default` or `none`; left out
/// (JSON clients), it is `name` when a name is given, else `none`.
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
pub struct EntityInput {
    #[serde(default, deserialize_with = "lenient")]
    user_kind: String,
    #[serde(default, deserialize_with = "lenient")]
    user: String,
    #[serde(default, deserialize_with = "lenient")]
    client_kind: String,
    #[serde(default, deserialize_with = "lenient")]
    client_id: String,
}

impl EntityInput {
    fn values(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("user_kind".into(), self.user_kind.clone()),
            ("user".into(), self.user.clone()),
            ("client_kind".into(), self.client_kind.clone()),
            ("client_id".into(), self.client_id.clone()),
        ])
    }

    /// The entity, checked: each side none, the default, or a bounded name. Typed names
    /// (`typed`) lose surrounding spaces; names a row's form carries back are the cluster's
    /// own and are kept exactly, spaces and all.
    fn entity(&self, typed: bool) -> Result<QuotaEntity, ConsoleError> {
        let user = side(
            ("user_kind", "user", "user"),
            &self.user_kind,
            &self.user,
            typed,
        )?;
        let client_id = side(
            ("client_kind", "client_id", "client id"),
            &self.client_kind,
            &self.client_id,
            typed,
        )?;
        if user.is_none() && client_id.is_none() {
            return Err(ConsoleError::invalid(
                "",
                "choose a user, a client id, or both (a name or the default)",
            ));
        }
        Ok(QuotaEntity { user, client_id })
    }
}

/// One side of an entity from its kind and name fields (`fields`: the kind's field, the
/// name's field, what to call it).
fn side(
    (kind_field, name_field, what): (&str, &str, &str),
    kind: &str,
    name: &str,
    typed: bool,
) -> Result<Option<Option<String>>, ConsoleError> {
    let name = if typed || name.trim().is_empty() {
        name.trim()
    } else {
        name
    };
    let kind = match kind.trim() {
        "" if name.is_empty() => "none",
        "" => "name",
        k => k,
    };
    match kind {
        "none" if name.is_empty() => Ok(None),
        "none" => Err(ConsoleError::invalid(
            name_field,
            format!("choose 'this {what}' to set quotas of {what} '{name}', or clear the name"),
        )),
        "default" if name.is_empty() => Ok(Some(None)),
        "default" => Err(ConsoleError::invalid(
            name_field,
            format!("the default {what} has no name: clear it, or choose 'this {what}'"),
        )),
        "name" if name.is_empty() => Err(ConsoleError::invalid(
            name_field,
            format!("a {what} name is required"),
        )),
        "name" if name.len() > MAX_ENTITY_NAME => Err(ConsoleError::invalid(
            name_field,
            format!("a {what} has at most {MAX_ENTITY_NAME} bytes"),
        )),
        "name" if name.chars().any(char::is_control) => Err(ConsoleError::invalid(
            name_field,
            format!("a {what} has no control characters"),
        )),
        "name" => Ok(Some(Some(name.to_string()))),
        other => Err(ConsoleError::invalid(
            kind_field,
            format!("'{other}' is not name, default or none"),
        )),
    }
}

/// Body of POST `/quotas` (audited whole: it holds no secret).
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct SetInput {
    #[serde(flatten)]
    entity: EntityInput,
    #[serde(default, deserialize_with = "lenient")]
    producer_byte_rate: String,
    #[serde(default, deserialize_with = "lenient")]
    consumer_byte_rate: String,
    #[serde(default, deserialize_with = "lenient")]
    request_percentage: String,
    #[serde(default, deserialize_with = "lenient")]
    controller_mutation_rate: String,
}

impl SetInput {
    /// (key, as typed) in column order.
    fn typed(&self) -> [(&'static str, &str); 4] {
        [
            ("producer_byte_rate", &self.producer_byte_rate),
            ("consumer_byte_rate", &self.consumer_byte_rate),
            ("request_percentage", &self.request_percentage),
            ("controller_mutation_rate", &self.controller_mutation_rate),
        ]
    }

    fn values(&self) -> BTreeMap<String, String> {
        let mut v = self.entity.values();
        for (k, typed) in self.typed() {
            v.insert(k.to_string(), typed.to_string());
        }
        v
    }

    /// The values to set: each non-empty field, a positive number (the cluster checks the
    /// rest, such as whole bytes per second, and says so in its own words).
    fn quotas(&self) -> Result<Vec<(String, f64)>, ConsoleError> {
        let mut out = Vec::new();
        for (k, typed) in self.typed() {
            let typed = typed.trim();
            if typed.is_empty() {
                continue;
            }
            match typed.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => out.push((k.to_string(), v)),
                _ => {
                    let shown: String = typed.chars().take(40).collect();
                    return Err(ConsoleError::invalid(
                        k,
                        format!("'{shown}' is not a positive number"),
                    ));
                }
            }
        }
        if out.is_empty() {
            return Err(ConsoleError::invalid(
                "",
                "give at least one value (an empty field leaves that quota as it is)",
            ));
        }
        Ok(out)
    }
}

/// The field a cluster refusal concerns: the quota key its message names, if any.
fn kafka_field(_code: i16, message: &str) -> String {
    QUOTA_COLUMNS
        .iter()
        .find(|k| message.contains(*k))
        .map(|k| k.to_string())
        .unwrap_or_default()
}

/// Waits (bounded) until a describe of `entity` satisfies `applied`, so the page shown next
/// has the change even when another node answers it.
async fn settle(
    c: &Console,
    entity: &QuotaEntity,
    applied: impl Fn(Option<&EntityQuotas>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let filter = QuotaFilter::entity(entity);
    loop {
        if let Ok(found) = c.cluster().describe_client_quotas(&filter).await {
            if applied(found.iter().find(|q| q.entity == *entity)) {
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POST `/quotas`: sets the given values of one entity.
pub async fn set(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<SetInput>,
) -> Response {
    let result = save(&c, &input).await;
    let target = input
        .entity
        .entity(true)
        .map(|e| e.to_string())
        .unwrap_or_default();
    audit(&c, "alter-client-quotas", &target, &input, &result).await;
    match result {
        Ok((entity, set)) => {
            let shown: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let values: serde_json::Map<String, serde_json::Value> =
                set.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            done(
                &headers,
                "/quotas",
                &format!("Quotas of {entity} set: {}", shown.join(", ")),
                json!({ "saved": entity.to_string(), "set": values }),
            )
        }
        Err(e) => failed(&c, &headers, "set-quotas", e, input.values()).await,
    }
}

async fn save(
    c: &Console,
    input: &SetInput,
) -> Result<(QuotaEntity, Vec<(String, f64)>), ConsoleError> {
    let entity = input.entity.entity(true)?;
    let set = input.quotas()?;
    let change = QuotaAlteration {
        entity: entity.clone(),
        set: set.clone(),
        remove: Vec::new(),
    };
    for r in c.cluster().alter_client_quotas(&[change], false).await? {
        r?;
    }
    settle(c, &entity, |q| {
        q.is_some_and(|q| set.iter().all(|(k, v)| q.get(k) == Some(*v)))
    })
    .await;
    Ok((entity, set))
}

/// Body of POST `/quotas/delete`.
#[derive(Debug, Deserialize, Serialize, Default)]
pub struct DeleteInput {
    #[serde(flatten)]
    entity: EntityInput,
    #[serde(default, deserialize_with = "lenient")]
    confirm: String,
}

/// What the audit log records of a removal: the entity and the values it had.
#[derive(Debug, Serialize)]
struct AuditedDelete<'a> {
    #[serde(flatten)]
    entity: &'a EntityInput,
    removed: BTreeMap<String, f64>,
}

/// POST `/quotas/delete`: removes every quota of one entity, once its name is typed again.
pub async fn delete(
    State(c): AppState,
    headers: HeaderMap,
    FormOrJson(input): FormOrJson<DeleteInput>,
) -> Response {
    let result = remove(&c, &input).await;
    let target = input
        .entity
        .entity(false)
        .map(|e| e.to_string())
        .unwrap_or_default();
    let audited = AuditedDelete {
        entity: &input.entity,
        removed: result
            .as_ref()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default(),
    };
    audit(&c, "delete-client-quotas", &target, &audited, &result).await;
    match result {
        Ok(removed) => {
            let keys: Vec<&str> = removed.iter().map(|(k, _)| k.as_str()).collect();
            done(
                &headers,
                "/quotas",
                &format!("Quotas of {target} removed"),
                json!({ "removed": target, "keys": keys }),
            )
        }
        Err(e) => failed(&c, &headers, "delete-quota", e, BTreeMap::new()).await,
    }
}

async fn remove(c: &Console, input: &DeleteInput) -> Result<Vec<(String, f64)>, ConsoleError> {
    let entity = input.entity.entity(false)?;
    if input.confirm != entity.to_string() {
        return Err(ConsoleError::invalid(
            "confirm",
            format!("type {entity} exactly to confirm the removal"),
        ));
    }
    let found = c
        .cluster()
        .describe_client_quotas(&QuotaFilter::entity(&entity))
        .await?;
    let Some(current) = found
        .into_iter()
        .find(|q| q.entity == entity && !q.values.is_empty())
    else {
        return Err(ConsoleError::NotFound(format!("no quotas for {entity}")));
    };
    let change = QuotaAlteration {
        entity: entity.clone(),
        set: Vec::new(),
        remove: current.values.iter().map(|(k, _)| k.clone()).collect(),
    };
    for r in c.cluster().alter_client_quotas(&[change], false).await? {
        r?;
    }
    settle(c, &entity, |q| q.is_none_or(|q| q.values.is_empty())).await;
    Ok(current.values)
}

async fn failed(
    c: &Console,
    headers: &HeaderMap,
    form: &str,
    e: ConsoleError,
    values: BTreeMap<String, String>,
) -> Response {
    let (status, field) = e.status_and_field(&kafka_field);
    if wants_json(headers) {
        return json_error(status, &field, &e.to_string());
    }
    if status == StatusCode::NOT_FOUND {
        return error_page(c, headers, status, &field, &e.to_string());
    }
    let view = page(c, form_state(form, field, e.to_string(), values), None).await;
    respond(headers, status, &view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(uk: &str, u: &str, ck: &str, cid: &str) -> EntityInput {
        EntityInput {
            user_kind: uk.into(),
            user: u.into(),
            client_kind: ck.into(),
            client_id: cid.into(),
        }
    }

    fn entity(uk: &str, u: &str, ck: &str, cid: &str) -> Result<QuotaEntity, ConsoleError> {
        input(uk, u, ck, cid).entity(true)
    }

    fn field_of(r: Result<impl std::fmt::Debug, ConsoleError>) -> String {
        match r {
            Err(ConsoleError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn entity_fields_make_kafkas_entities() {
        let e = entity("name", " alice ", "default", "").expect("valid");
        assert_eq!(e.to_string(), "user=alice,client-id=<default>");
        let e = entity("none", "", "name", "app").expect("valid");
        assert_eq!(e.to_string(), "client-id=app");
        // JSON clients may leave the kinds out.
        let e = entity("", "bob", "", "").expect("valid");
        assert_eq!(e.to_string(), "user=bob");
        let e = entity("default", "", "none", "").expect("valid");
        assert_eq!(e.to_string(), "user=<default>");
        // A row's form carries the cluster's name back exactly.
        let e = input("name", " spaced ", "none", "")
            .entity(false)
            .expect("valid");
        assert_eq!(e.user, Some(Some(" spaced ".to_string())));
    }

    #[test]
    fn bad_entity_fields_name_their_field() {
        assert_eq!(field_of(entity("none", "", "none", "")), "");
        assert_eq!(field_of(entity("", "", "", "")), "");
        assert_eq!(field_of(entity("name", "", "none", "")), "user");
        assert_eq!(field_of(entity("none", "alice", "none", "")), "user");
        assert_eq!(field_of(entity("none", "", "default", "app")), "client_id");
        assert_eq!(field_of(entity("ip", "", "none", "")), "user_kind");
        assert_eq!(field_of(entity("none", "", "everyone", "x")), "client_kind");
        let long = "x".repeat(MAX_ENTITY_NAME + 1);
        assert_eq!(field_of(entity("name", &long, "none", "")), "user");
        assert_eq!(field_of(entity("none", "", "name", "a\u{7}b")), "client_id");
    }

    #[test]
    fn values_are_positive_numbers_and_empty_is_unchanged() {
        let input = SetInput {
            producer_byte_rate: "1048576".into(),
            request_percentage: " 12.5 ".into(),
            ..SetInput::default()
        };
        assert_eq!(
            input.quotas().expect("valid"),
            vec![
                ("producer_byte_rate".to_string(), 1048576.0),
                ("request_percentage".to_string(), 12.5)
            ]
        );
        for (bad, field) in [
            ("x", "consumer_byte_rate"),
            ("-5", "consumer_byte_rate"),
            ("0", "consumer_byte_rate"),
            ("inf", "consumer_byte_rate"),
        ] {
            let input = SetInput {
                consumer_byte_rate: bad.into(),
                ..SetInput::default()
            };
            assert_eq!(field_of(input.quotas()), field, "{bad}");
        }
        assert_eq!(field_of(SetInput::default().quotas()), "");
    }

    #[test]
    fn cluster_refusals_land_on_the_key_they_name() {
        assert_eq!(
            kafka_field(
                42,
                "Proposed value for producer_byte_rate is not an integer."
            ),
            "producer_byte_rate"
        );
        assert_eq!(kafka_field(42, "Invalid empty entity type."), "");
    }
}
