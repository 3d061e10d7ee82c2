//! ApiVersions: what this broker speaks.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::context::Broker;

fn keys() -> Vec<ApiVersion> {
    ApiKey::iter()
        .filter_map(|k| {
            let v = super::versions::advertised(k)?;
            Some(
                ApiVersion::default()
                    .with_api_key(k as i16)
                    .with_min_version(v.min)
                    .with_max_version(v.max),
            )
        })
        .collect()
}

/// Handles ApiVersions.
pub async fn handle(
    _b: &Broker,
    _req: ApiVersionsRequest,
    _version: i16,
    _ctx: &super::Ctx<'_>,
) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(keys())
}

/// The KIP-511 answer to a version newer than ours: v0 shape, UNSUPPORTED_VERSION, our list.
pub fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(keys())
}
