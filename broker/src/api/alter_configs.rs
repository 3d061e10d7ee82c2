//! AlterConfigs (replace a topic's overrides) and IncrementalAlterConfigs (SET, DELETE, APPEND,
//! SUBTRACT). Bad keys or values get INVALID_CONFIG with a message; nothing is half-applied.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use crate::config::defs::{self, ConfigType};
use crate::context::Broker;
use crate::error::KafkaError;
use rill_client::resource::{RESOURCE_BROKER, RESOURCE_TOPIC};

/// Handles AlterConfigs.
pub async fn handle_alter(
    b: &Broker,
    req: AlterConfigsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let out = kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default().with_resource_type(r.resource_type).with_resource_name(r.resource_name.clone());
        let result = async {
            ctx.authz.config_resource(
                crate::metadata::acl::AclOperation::AlterConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            )?;
            if r.resource_type != RESOURCE_BROKER {
                check_resource(b, r.resource_type, r.resource_name.as_str())?;
            }
            let mut configs = BTreeMap::new();
            for c in &r.configs {
                let v = c.value.as_ref().ok_or_else(|| {
                    KafkaError::InvalidConfig(format!("Null value not supported for {}", c.name))
                })?;
                configs.insert(c.name.to_string(), v.to_string());
            }
            if r.resource_type == RESOURCE_BROKER {
                return b
                    .controller
                    .set_broker_configs(r.resource_name.as_str(), configs, req.validate_only)
                    .await;
            }
            b.controller
                .set_topic_configs(r.resource_name.as_str(), configs, req.validate_only)
                .await
        }
        .await;
        responses.push(match result {
            Ok(()) => out,
            Err(e) => out
                .with_error_code(e.code())
                .with_error_message(e.message()),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// Handles IncrementalAlterConfigs.
pub async fn handle_incremental(
    b: &Broker,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
    ctx: &super::Ctx<'_>,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let out = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let name = r.resource_name.to_string();
        let result = async {
            ctx.authz.config_resource(
                crate::metadata::acl::AclOperation::AlterConfigs,
                r.resource_type,
                &name,
            )?;
            if r.resource_type == RESOURCE_BROKER {
                return alter_broker(b, &name, &r.configs, req.validate_only).await;
            }
            check_resource(b, r.resource_type, &name)?;
            let current = b
                .controller
                .image()
                .topics
                .get(&name)
                .map(|t| t.configs.clone())
                .unwrap_or_default();
            let ops: Vec<(String, i8, Option<String>)> = r
                .configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.to_string()),
                    )
                })
                .collect();
            let next = apply_ops(&current, &ops, b)?;
            b.controller
                .set_topic_configs(&name, next, req.validate_only)
                .await
        }
        .await;
        responses.push(match result {
            Ok(()) => {
                if !req.validate_only {
                    tracing::info!(topic = %name, "altered topic configs");
                }
                out
            }
            Err(e) => out
                .with_error_code(e.code())
                .with_error_message(e.message()),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs on a BROKER resource (`""` for all brokers, or one broker id):
/// SET and DELETE of the dynamic broker configs (`replica/throttle.rs`).
async fn alter_broker(
    b: &Broker,
    name: &str,
    ops: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), KafkaError> {
    let mut next = b
        .controller
        .image()
        .broker_configs
        .get(name)
        .cloned()
        .unwrap_or_default();
    for c in ops {
        let key = c.name.to_string();
        match (c.config_operation, &c.value) {
            (0, Some(v)) => {
                next.insert(key, v.to_string());
            }
            (1, _) => {
                next.remove(&key);
            }
            (0, None) => {
                return Err(KafkaError::InvalidConfig(format!(
                    "Null value not supported for SET of {key}"
                )))
            }
            (op, _) => {
                return Err(KafkaError::InvalidConfig(format!(
                    "Config operation {op} is not allowed for broker config {key}"
                )))
            }
        }
    }
    b.controller
        .set_broker_configs(name, next, validate_only)
        .await
}

fn check_resource(b: &Broker, kind: i8, name: &str) -> Result<(), KafkaError> {
    match kind {
        RESOURCE_TOPIC => {
            if b.controller.image().topics.contains_key(name) {
                Ok(())
            } else {
                Err(KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist.")))
            }
        }
        RESOURCE_BROKER => Err(KafkaError::InvalidConfig("Dynamic broker configs are not supported: set broker configs in server.properties or with --override and restart".into())),
        other => Err(KafkaError::InvalidRequest(format!("Unsupported resource type {other}: only TOPIC (2) configs can be altered"))),
    }
}

/// Applies incremental operations to a topic's overrides: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, i8, Option<String>)],
    b: &Broker,
) -> Result<BTreeMap<String, String>, KafkaError> {
    let mut next = current.clone();
    let mut touched = std::collections::HashSet::new();
    for (key, op, value) in ops {
        if !touched.insert(key.clone()) {
            return Err(KafkaError::InvalidRequest(format!(
                "Error due to duplicate config keys: {key}"
            )));
        }
        let def = defs::topic_config(key).ok_or_else(|| {
            KafkaError::InvalidConfig(format!("Unknown topic config name: {key}"))
        })?;
        match op {
            0 => {
                let v = value.clone().ok_or_else(|| {
                    KafkaError::InvalidConfig(format!("Null value not supported for SET of {key}"))
                })?;
                next.insert(key.clone(), v);
            }
            1 => {
                next.remove(key);
            }
            2 | 3 => {
                if def.kind != ConfigType::List {
                    let verb = if *op == 2 { "append" } else { "subtract" };
                    return Err(KafkaError::InvalidConfig(format!(
                        "Config value {verb} is not allowed for config key: {key}"
                    )));
                }
                let effective = defs::resolve(def, &next, &b.config.raw).value;
                let mut items: Vec<String> =
                    defs::split_list(&effective).map(str::to_string).collect();
                let given: Vec<String> = value
                    .as_deref()
                    .map(|v| defs::split_list(v).map(str::to_string).collect())
                    .unwrap_or_default();
                if *op == 2 {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                next.insert(key.clone(), items.join(","));
            }
            other => {
                return Err(KafkaError::InvalidRequest(format!(
                    "Unknown config operation {other} for {key}"
                )))
            }
        }
    }
    Ok(next)
}
