//! The shared client against a lying peer: a response size prefix the peer does not back with
//! bytes must cost the client nothing. A counting allocator with a limit makes an allocation
//! sized by the claim fail (which aborts the test binary) instead of passing unnoticed.

use std::alloc::System;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use cap::Cap;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use rill_client::{ClientError, Connection, ConnectionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// What the client may allocate above its baseline while reading the lying response.
const HEADROOM: usize = 32 << 20;

/// Answers ApiVersions properly, then every other request with a size prefix of `claimed`
/// bytes followed by `sent` bytes, and keeps the connection open until the client gives up.
async fn lying_broker(claimed: i32, sent: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        loop {
            let Ok(size) = s.read_i32().await else { return };
            let mut buf = BytesMut::zeroed(size as usize);
            s.read_exact(&mut buf).await.unwrap();
            let mut frame = buf.freeze();
            let version = i16::from_be_bytes([frame[2], frame[3]]);
            let api = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
            let header =
                RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
            let mut out = BytesMut::new();
            if api == ApiKey::ApiVersions {
                out.put_i32(0);
                ResponseHeader::default()
                    .with_correlation_id(header.correlation_id)
                    .encode(&mut out, api.response_header_version(version))
                    .unwrap();
                ApiVersionsResponse::default()
                    .with_api_keys(vec![
                        ApiVersion::default()
                            .with_api_key(ApiKey::ApiVersions as i16)
                            .with_max_version(3),
                        ApiVersion::default()
                            .with_api_key(ApiKey::Metadata as i16)
                            .with_max_version(12),
                    ])
                    .encode(&mut out, version)
                    .unwrap();
                let len = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&len.to_be_bytes());
            } else {
                out.put_i32(claimed);
                out.put_i32(header.correlation_id);
                out.put_bytes(0, sent.saturating_sub(4));
            }
            s.write_all(&out).await.unwrap();
            if api != ApiKey::ApiVersions {
                // Hold the connection: the client must give up on its own deadline.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_response_size_prefix_without_its_bytes_allocates_nothing() {
    let claimed = 100 << 20; // the client's default max_response_bytes
    let addr = lying_broker(claimed, 16).await;
    let config = ConnectionConfig {
        request_timeout: Duration::from_millis(500),
        max_response_bytes: claimed as usize,
        ..ConnectionConfig::default()
    };
    let mut conn = Connection::connect(&addr, config).await.unwrap();
    ALLOC.set_limit(ALLOC.allocated() + HEADROOM).unwrap();
    let err = conn.send(MetadataRequest::default()).await.unwrap_err();
    ALLOC.set_limit(usize::MAX).unwrap();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
}
