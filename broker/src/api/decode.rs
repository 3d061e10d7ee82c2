//! The server's decode step, pure: one request frame's bytes (after the size prefix) in, the
//! header and typed request out, or why the connection must be closed. `handle_frame` calls
//! exactly this, and so does the fuzz harness (`broker/tests/fuzz.rs`), so what is fuzzed is
//! what the network reaches. All decoding is `kafka-protocol`'s (patched for bounded counts,
//! `vendor/kafka-protocol/RILL-PATCH.md`).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use super::versions;

/// A decoded request.
// The small variant is rare (at most once per connection); boxing the request would cost
// every request an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decoded {
    /// A request this broker serves.
    Request {
        /// The API.
        api: ApiKey,
        /// Its version (within what this broker serves).
        version: i16,
        /// The request header (client id, correlation id).
        header: RequestHeader,
        /// The body.
        body: RequestKind,
    },
    /// An ApiVersions newer than ours: answered with the KIP-511 v0 fallback.
    ApiVersionsTooNew {
        /// To echo.
        correlation_id: i32,
    },
}

/// Why a frame cannot be served: the connection is closed with this reason logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Decodes one frame as the server does.
pub fn decode(mut frame: Bytes) -> Result<Decoded, Refused> {
    if frame.len() < 8 {
        return Err(Refused(format!(
            "frame of {} bytes is too short for a request header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Err(Refused(format!("unknown API key {key}")));
    };
    let Some(range) = versions::supported(api) else {
        return Err(Refused(format!(
            "API {api:?} is not supported by this broker"
        )));
    };
    if api == ApiKey::ApiVersions && version > range.max {
        return Ok(Decoded::ApiVersionsTooNew { correlation_id });
    }
    if version < range.min || version > range.max {
        return Err(Refused(format!(
            "{api:?} v{version} is not supported (this broker serves v{}..=v{})",
            range.min, range.max
        )));
    }
    let header =
        RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
            Refused(format!(
                "malformed {api:?} v{version} request header: {e:#}"
            ))
        })?;
    let body = RequestKind::decode(api, &mut frame, version)
        .map_err(|e| Refused(format!("malformed {api:?} v{version} request: {e:#}")))?;
    Ok(Decoded::Request {
        api,
        version,
        header,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{FetchRequest, MetadataRequest};
    use kafka_protocol::protocol::Encodable;

    fn frame<R: Encodable>(api: ApiKey, version: i16, body: &R) -> BytesMut {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut b, api.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        b
    }

    #[test]
    fn a_good_frame_decodes() {
        let f = frame(ApiKey::Metadata, 12, &MetadataRequest::default());
        match decode(f.freeze()).unwrap() {
            Decoded::Request {
                api, header, body, ..
            } => {
                assert_eq!(api, ApiKey::Metadata);
                assert_eq!(header.correlation_id, 7);
                assert!(matches!(body, RequestKind::Metadata(_)));
            }
            other => panic!("{other:?}"),
        }
    }

    /// The crash that started the fuzzing: a Fetch whose topic count says 2^31-1 made the
    /// decoder reserve 163 GB and abort the process. Refused now, allocating nothing.
    #[test]
    fn an_oversized_array_count_is_refused_not_allocated() {
        let mut f = frame(ApiKey::Fetch, 12, &FetchRequest::default());
        // Fetch v12 (flexible): header, then replica_id, max_wait, min_bytes, max_bytes,
        // isolation, session id, epoch (4+4+4+4+1+4+4 = 25 bytes), then the topics array as a
        // compact (varint) count: make it 0x7fffffff.
        let header_len = f.len() - FetchRequest::default().compute_size(12).unwrap();
        let at = header_len + 25;
        let mut bad = BytesMut::from(&f[..at]);
        bad.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        bad.put_slice(&f[at + 1..]);
        let e = decode(bad.freeze()).unwrap_err();
        assert!(e.0.contains("Tried to allocate a collection"), "{e:?}");
        // A non-flexible request's int32 count the same way.
        f = frame(ApiKey::Metadata, 4, &MetadataRequest::default());
        let n = f.len();
        f[n - 5..n - 1].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode(f.freeze()).is_err());
    }

    #[test]
    fn unknown_keys_versions_and_short_frames_are_refused() {
        assert!(decode(Bytes::from_static(&[0, 3, 0])).is_err());
        assert!(decode(Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1])).is_err());
        assert!(decode(Bytes::from_static(&[0, 3, 0x7f, 0, 0, 0, 0, 1])).is_err());
        assert!(matches!(
            decode(Bytes::from_static(&[0, 18, 0x7f, 0, 0, 0, 0, 9])),
            Ok(Decoded::ApiVersionsTooNew { correlation_id: 9 })
        ));
    }
}
