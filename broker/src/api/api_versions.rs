//! ApiVersions: what this broker speaks, and (v3+) its features. The one feature is
//! `transaction.version` (KIP-890 part 2): supported levels 0..=2, announced only to v4+
//! requests as Kafka does (KAFKA-17492: a 3.x Java client refuses a supported feature whose
//! minimum is 0), and the finalized level (`transaction.version` in the broker's properties)
//! when it is not 0. The finalized-features epoch is the metadata image's version: the Java
//! client keeps features only from an answer whose epoch is above every one it saw, starting
//! from -1, so a broker answering -1 would never let it use transactions v2.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::context::Broker;
use crate::types::TxnVersion;

/// The feature whose level selects the transaction protocol.
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The first request version announced features with a minimum level of 0.
const FIRST_VERSION_WITH_LEVEL_0_FEATURES: i16 = 4;

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
    b: &Broker,
    _req: ApiVersionsRequest,
    version: i16,
    _ctx: &super::Ctx<'_>,
) -> ApiVersionsResponse {
    let resp = ApiVersionsResponse::default().with_api_keys(keys());
    if version < 3 {
        return resp;
    }
    features(
        resp,
        version,
        b.config.transactions.version,
        b.controller.image().version,
    )
}

/// The feature fields of a v3+ answer at `version`, `level` finalized, metadata image
/// `image_version`.
fn features(
    resp: ApiVersionsResponse,
    version: i16,
    level: TxnVersion,
    image_version: u64,
) -> ApiVersionsResponse {
    let name = || StrBytes::from_static_str(TRANSACTION_VERSION_FEATURE);
    let supported = if version >= FIRST_VERSION_WITH_LEVEL_0_FEATURES {
        vec![SupportedFeatureKey::default()
            .with_name(name())
            .with_min_version(TxnVersion::TV0.0)
            .with_max_version(TxnVersion::LATEST.0)]
    } else {
        Vec::new()
    };
    let finalized = if level != TxnVersion::TV0 {
        vec![FinalizedFeatureKey::default()
            .with_name(name())
            .with_min_version_level(level.0)
            .with_max_version_level(level.0)]
    } else {
        Vec::new()
    };
    resp.with_supported_features(supported)
        .with_finalized_features_epoch(i64::try_from(image_version).unwrap_or(i64::MAX))
        .with_finalized_features(finalized)
}

/// The KIP-511 answer to a version newer than ours: v0 shape, UNSUPPORTED_VERSION, our list.
pub fn unsupported() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(keys())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_version_is_announced_as_kafka_does() {
        let v4 = features(ApiVersionsResponse::default(), 4, TxnVersion::TV2, 17);
        assert_eq!(v4.supported_features.len(), 1);
        assert_eq!(
            v4.supported_features[0].name.as_str(),
            "transaction.version"
        );
        assert_eq!(
            (
                v4.supported_features[0].min_version,
                v4.supported_features[0].max_version
            ),
            (0, 2)
        );
        assert_eq!(v4.finalized_features.len(), 1);
        assert_eq!(v4.finalized_features[0].max_version_level, 2);
        assert_eq!(v4.finalized_features[0].min_version_level, 2);
        assert_eq!(v4.finalized_features_epoch, 17);
        // A v3 client is not shown a feature whose minimum is 0; the finalized level stays.
        let v3 = features(ApiVersionsResponse::default(), 3, TxnVersion::TV2, 17);
        assert!(v3.supported_features.is_empty());
        assert_eq!(v3.finalized_features.len(), 1);
        // Level 0 is not finalized at all.
        let off = features(ApiVersionsResponse::default(), 4, TxnVersion::TV0, 17);
        assert!(off.finalized_features.is_empty());
        assert_eq!(off.supported_features.len(), 1);
    }
}
