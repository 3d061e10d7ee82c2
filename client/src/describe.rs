//! What the console shows beyond the CLI's needs: configs with their defaults, types and
//! documentation (DescribeConfigs with synonyms), for topics and brokers, and each broker's
//! log dirs with partition sizes (DescribeLogDirs).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeLogDirsRequest};

use super::admin::{missing, sb};
use super::{ClientError, Cluster, ConfigSource};

pub use super::resource::{RESOURCE_BROKER, RESOURCE_TOPIC};

/// One config with everything DescribeConfigs v3+ says about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDetail {
    /// Config name.
    pub name: String,
    /// Effective value (`None` for sensitive or unset values).
    pub value: Option<String>,
    /// Where the effective value comes from, by Kafka's name (`DYNAMIC_TOPIC_CONFIG`,
    /// `DEFAULT_CONFIG`, ...).
    pub source: String,
    /// The value it would have without the topic-level (or dynamic) setting: the next
    /// synonym's value, when the broker reports synonyms; the value itself when it is not
    /// set on the resource.
    pub default_value: Option<String>,
    /// True when it cannot be altered.
    pub read_only: bool,
    /// True for passwords and the like.
    pub sensitive: bool,
    /// Kafka's config type name (`BOOLEAN`, `STRING`, `INT`, `SHORT`, `LONG`, `DOUBLE`,
    /// `LIST`, `CLASS`, `PASSWORD`), `UNKNOWN` when not reported.
    pub config_type: String,
    /// The broker's documentation string, if any.
    pub documentation: Option<String>,
}

/// One log dir of one broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogDirInfo {
    /// The broker that reported it.
    pub broker: i32,
    /// Path on the broker.
    pub path: String,
    /// Kafka error code for the dir (0 = fine, KAFKA_STORAGE_ERROR = offline).
    pub error_code: i16,
    /// Total bytes of the volume, -1 when unknown.
    pub total_bytes: i64,
    /// Usable bytes of the volume, -1 when unknown.
    pub usable_bytes: i64,
    /// Partition sizes in bytes, by (topic, partition).
    pub partitions: BTreeMap<(String, i32), i64>,
}

fn config_type_name(code: i8) -> &'static str {
    match code {
        1 => "BOOLEAN",
        2 => "STRING",
        3 => "INT",
        4 => "SHORT",
        5 => "LONG",
        6 => "DOUBLE",
        7 => "LIST",
        8 => "CLASS",
        9 => "PASSWORD",
        _ => "UNKNOWN",
    }
}

impl Cluster {
    /// Every config of one resource (`RESOURCE_TOPIC` + topic name, or `RESOURCE_BROKER` +
    /// node id as a string), with synonyms and documentation. Broker resources are asked of
    /// that broker (Kafka answers for itself only).
    pub async fn describe_config_details(
        &self,
        resource_type: i8,
        name: &str,
    ) -> Result<Vec<ConfigDetail>, ClientError> {
        let mut all = self
            .describe_config_details_batch(resource_type, &[name.to_string()], true)
            .await?;
        match all.pop() {
            Some((_, r)) => r,
            None => Err(missing("DescribeConfigs", name)),
        }
    }

    /// The configs of several resources of one type in one request (one per broker for
    /// broker resources); one result per name, in request order. Documentation only when
    /// asked for (it is most of the answer's size).
    pub async fn describe_config_details_batch(
        &self,
        resource_type: i8,
        names: &[String],
        documentation: bool,
    ) -> Result<Vec<(String, Result<Vec<ConfigDetail>, ClientError>)>, ClientError> {
        let request = |names: &[String]| {
            DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_include_documentation(documentation)
                .with_resources(
                    names
                        .iter()
                        .map(|n| {
                            DescribeConfigsResource::default()
                                .with_resource_type(resource_type)
                                .with_resource_name(sb(n))
                                .with_configuration_keys(None)
                        })
                        .collect(),
                )
        };
        let mut results = Vec::new();
        if resource_type == RESOURCE_BROKER {
            for name in names {
                let node: i32 = name.parse().map_err(|_| {
                    ClientError::Protocol(format!("broker resource '{name}' is not a node id"))
                })?;
                let resp = self
                    .send_to(node, request(std::slice::from_ref(name)))
                    .await?;
                results.extend(resp.results);
            }
        } else {
            results = self.send_to_any(request(names)).await?.results;
        }
        Ok(names
            .iter()
            .map(|name| {
                let pos = results
                    .iter()
                    .position(|r| r.resource_type == resource_type && *r.resource_name == **name);
                let r = match pos.map(|i| results.swap_remove(i)) {
                    None => Err(missing("DescribeConfigs", name)),
                    Some(r) => ClientError::check(r.error_code, r.error_message.as_deref())
                        .map(|()| convert_configs(r.configs)),
                };
                (name.clone(), r)
            })
            .collect())
    }

    /// The log dirs of broker `node` with the size of every partition in them.
    pub async fn describe_log_dirs(&self, node: i32) -> Result<Vec<LogDirInfo>, ClientError> {
        let resp = self
            .send_to(node, DescribeLogDirsRequest::default().with_topics(None))
            .await?;
        ClientError::check(resp.error_code, None)?;
        Ok(resp
            .results
            .into_iter()
            .map(|d| LogDirInfo {
                broker: node,
                path: d.log_dir.to_string(),
                error_code: d.error_code,
                total_bytes: d.total_bytes,
                usable_bytes: d.usable_bytes,
                partitions: d
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.to_string();
                        t.partitions
                            .into_iter()
                            .filter(|p| !p.is_future_key)
                            .map(move |p| ((name.clone(), p.partition_index), p.partition_size))
                    })
                    .collect(),
            })
            .collect())
    }
}

fn convert_configs(
    configs: Vec<
        kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult,
    >,
) -> Vec<ConfigDetail> {
    let mut out: Vec<ConfigDetail> = configs
        .into_iter()
        .map(|c| {
            // Synonyms come in precedence order, the effective one first: the next one from
            // another source is what the value falls back to.
            // A value not set on the resource itself (inherited from the broker or Kafka's
            // default) is its own default.
            let set_here = matches!(c.config_source, 1 | 2);
            let default_value = c
                .synonyms
                .iter()
                .filter(|s| s.source != c.config_source)
                .find_map(|s| s.value.as_ref().map(|v| v.to_string()))
                .or_else(|| {
                    (!set_here)
                        .then(|| c.value.as_ref().map(|v| v.to_string()))
                        .flatten()
                });
            ConfigDetail {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: ConfigSource::from_code(c.config_source).name().to_string(),
                default_value,
                read_only: c.read_only,
                sensitive: c.is_sensitive,
                config_type: config_type_name(c.config_type).to_string(),
                documentation: c.documentation.map(|d| d.to_string()),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
