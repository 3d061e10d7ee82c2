//! DescribeConfigs: every topic config with its effective value, source, synonyms, type and
//! documentation, as Kafka answers; broker configs as this node was started with.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::sb;
use crate::config::defs::{self, ConfigSource, ConfigType};
use crate::context::Broker;
use crate::error::KafkaError;

use rill_client::resource::{RESOURCE_BROKER, RESOURCE_TOPIC};

/// Handles DescribeConfigs.
pub async fn handle(
    b: &Broker,
    req: DescribeConfigsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let allowed = ctx.authz.config_resource(
                crate::metadata::acl::AclOperation::DescribeConfigs,
                r.resource_type,
                r.resource_name.as_str(),
            );
            match allowed.and_then(|()| {
                describe(
                    b,
                    r.resource_type,
                    r.resource_name.as_str(),
                    req.include_synonyms && version >= 1,
                    req.include_documentation && version >= 3,
                    version >= 3,
                )
            }) {
                Ok(configs) => {
                    let configs = configs
                        .into_iter()
                        .filter(|c| {
                            keys.as_ref()
                                .is_none_or(|k| k.iter().any(|k| k == c.name.as_str()))
                        })
                        .collect();
                    out.with_configs(configs)
                }
                Err(e) => out
                    .with_error_code(e.code())
                    .with_error_message(e.message()),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(
    b: &Broker,
    kind: i8,
    name: &str,
    synonyms: bool,
    docs: bool,
    typed: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, KafkaError> {
    match kind {
        RESOURCE_TOPIC => {
            let image = b.controller.image();
            let topic = image.topics.get(name).ok_or_else(|| {
                KafkaError::UnknownTopicOrPartition(format!("Topic '{name}' does not exist."))
            })?;
            Ok(defs::resolve_all(&topic.configs, &b.config.raw)
                .into_iter()
                .map(|r| {
                    let syn = if synonyms {
                        r.synonyms
                            .iter()
                            .map(|s| {
                                DescribeConfigsSynonym::default()
                                    .with_name(sb(s.name.clone()))
                                    .with_value(Some(sb(s.value.clone())))
                                    .with_source(s.source as i8)
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(sb(r.def.name))
                        .with_value(Some(sb(r.value)))
                        .with_config_source(r.source as i8)
                        .with_config_type(if typed { r.def.kind as i8 } else { 0 })
                        .with_synonyms(syn)
                        .with_documentation(docs.then(|| sb(r.def.doc)))
                })
                .collect())
        }
        RESOURCE_BROKER => {
            if !name.is_empty() && name != b.config.node_id.to_string() {
                return Err(KafkaError::InvalidRequest(format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    b.config.node_id
                )));
            }
            // Security settings too, secrets without their value (Kafka's sensitive
            // configs: is_sensitive, null value).
            let security = crate::config::security::described(&b.config.raw)
                .into_iter()
                .map(|(k, v)| {
                    let syn = if synonyms {
                        vec![DescribeConfigsSynonym::default()
                            .with_name(sb(k.clone()))
                            .with_value(v.clone().map(sb))
                            .with_source(ConfigSource::StaticBroker as i8)]
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(sb(k))
                        .with_is_sensitive(v.is_none())
                        .with_value(v.map(sb))
                        .with_config_source(ConfigSource::StaticBroker as i8)
                        .with_config_type(if typed { ConfigType::String as i8 } else { 0 })
                        .with_read_only(true)
                        .with_synonyms(syn)
                })
                .collect::<Vec<_>>();
            Ok(broker_configs(b)
                .into_iter()
                .map(|(k, v, kind, source)| {
                    let read_only =
                        !crate::config::dynamic::DYNAMIC_BROKER_CONFIGS.contains(&k.as_str());
                    let syn = if synonyms {
                        vec![DescribeConfigsSynonym::default()
                            .with_name(sb(k.clone()))
                            .with_value(Some(sb(v.clone())))
                            .with_source(source as i8)]
                    } else {
                        Vec::new()
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                        .with_config_source(source as i8)
                        .with_config_type(if typed { kind as i8 } else { 0 })
                        .with_read_only(read_only)
                        .with_synonyms(syn)
                })
                .chain(security)
                .collect())
        }
        other => Err(KafkaError::InvalidRequest(format!(
            "Unsupported resource type {other}: only TOPIC (2) and BROKER (4) are described"
        ))),
    }
}

/// The node's effective static configuration: (key, value, type, source).
pub fn broker_configs(b: &Broker) -> Vec<(String, String, ConfigType, ConfigSource)> {
    let c = &b.config;
    let src = |k: &str| {
        if c.raw.contains_key(k) {
            ConfigSource::StaticBroker
        } else {
            ConfigSource::Default
        }
    };
    let listeners = |ls: &[crate::config::Listener]| {
        ls.iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = vec![
        (
            "node.id".to_string(),
            c.node_id.to_string(),
            ConfigType::Int,
            src("node.id"),
        ),
        (
            "listeners".into(),
            listeners(&c.listeners),
            ConfigType::String,
            src("listeners"),
        ),
        (
            "advertised.listeners".into(),
            listeners(&c.advertised_listeners),
            ConfigType::String,
            src("advertised.listeners"),
        ),
        (
            "log.dirs".into(),
            c.log_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            ConfigType::String,
            src("log.dirs"),
        ),
        (
            "num.partitions".into(),
            c.num_partitions.to_string(),
            ConfigType::Int,
            src("num.partitions"),
        ),
        (
            "default.replication.factor".into(),
            c.default_replication_factor.to_string(),
            ConfigType::Int,
            src("default.replication.factor"),
        ),
        (
            "auto.create.topics.enable".into(),
            c.auto_create_topics.to_string(),
            ConfigType::Boolean,
            src("auto.create.topics.enable"),
        ),
        (
            "delete.topic.enable".into(),
            c.delete_topic_enable.to_string(),
            ConfigType::Boolean,
            src("delete.topic.enable"),
        ),
        (
            "socket.request.max.bytes".into(),
            c.socket_request_max_bytes.to_string(),
            ConfigType::Int,
            src("socket.request.max.bytes"),
        ),
        (
            "log.retention.check.interval.ms".into(),
            c.retention_check_interval_ms.to_string(),
            ConfigType::Long,
            src("log.retention.check.interval.ms"),
        ),
        (
            "http.listener".into(),
            c.http_listener.to_string(),
            ConfigType::String,
            src("http.listener"),
        ),
    ];
    if let Some(rack) = &c.rack {
        out.push((
            "broker.rack".into(),
            rack.clone(),
            ConfigType::String,
            ConfigSource::StaticBroker,
        ));
    }
    // The broker-level defaults of every topic config, under their broker names: the primary
    // key with the effective value (in its unit), and every coarser synonym that was set.
    for r in defs::resolve_all(&Default::default(), &c.raw) {
        if let Some((key, _)) = r.def.synonyms.first() {
            out.push((key.to_string(), r.value.clone(), r.def.kind, r.source));
        }
        for (key, _) in r.def.synonyms.iter().skip(1) {
            if let Some(v) = c.raw.get(*key) {
                out.push((
                    key.to_string(),
                    v.clone(),
                    r.def.kind,
                    ConfigSource::StaticBroker,
                ));
            }
        }
    }
    // Dynamic broker configs (the replication throttle rates): this broker's value, else the
    // cluster-wide one, else Kafka's default (no limit).
    let image = b.controller.image();
    let me = crate::types::BrokerId(c.node_id);
    for key in crate::config::dynamic::DYNAMIC_BROKER_CONFIGS {
        let own = image
            .broker_configs
            .get(&c.node_id.to_string())
            .and_then(|m| m.get(*key));
        let (value, source) = match (own, image.broker_config(me, key)) {
            (Some(v), _) => (v.clone(), ConfigSource::DynamicBroker),
            (None, Some(v)) => (v.to_string(), ConfigSource::DynamicDefaultBroker),
            (None, None) => (i64::MAX.to_string(), ConfigSource::Default),
        };
        out.push((key.to_string(), value, ConfigType::Long, source));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}
