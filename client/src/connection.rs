//! One TCP connection to one broker: ApiVersions on connect, then one request at a time.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::security::{server_name, ClientSecurity, SaslCredentials, SaslMechanism, ScramClient};
use super::ClientError;

/// A connection's byte stream: a TCP socket, or TLS over one.
trait Io: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Io for T {}

/// The most a response buffer reserves before its bytes arrive (replica fetches bring up to
/// `replica.fetch.response.max.bytes`, 10 MiB by default, and grow past this as they arrive).
const INITIAL_RESPONSE_CAPACITY: usize = 2 << 20;

/// The ApiVersions version tried first (KIP-511: v3 carries the client's name and version).
const API_VERSIONS_FIRST: i16 = 3;
/// UNSUPPORTED_VERSION, the code of a KIP-511 "v0 fallback" ApiVersions answer.
const UNSUPPORTED_VERSION: i16 = 35;

/// Settings shared by every connection a client opens.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header; brokers log it and group members report it.
    pub client_id: String,
    /// Limit for the TCP connect (per address tried).
    pub connect_timeout: Duration,
    /// Limit for one request: from writing it to having read the whole response.
    pub request_timeout: Duration,
    /// Largest response accepted; a bigger size prefix means the stream is not Kafka.
    pub max_response_bytes: usize,
    /// TLS and SASL (`--command-config`); PLAINTEXT by default.
    pub security: ClientSecurity,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "rill".to_string(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 100 * 1024 * 1024,
            security: ClientSecurity::default(),
        }
    }
}

/// One connection to a broker. Requests go one at a time (`&mut self`), so responses can
/// only arrive in order; the correlation id is still checked.
///
/// After an I/O error, a timeout or a protocol error the connection is marked broken (the
/// stream may hold a late or partial response) and every later `send` fails fast; open a
/// new one.
pub struct Connection {
    addr: String,
    stream: Box<dyn Io>,
    config: ConnectionConfig,
    correlation_id: i32,
    /// The broker's version range per API key, from ApiVersions.
    broker_versions: HashMap<i16, VersionRange>,
    broken: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates versions with ApiVersions (v3, or
    /// what the broker's KIP-511 fallback answer says it supports).
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection, ClientError> {
        let limit = config.connect_timeout;
        let stream = within(limit, addr, "connect to", TcpStream::connect(addr)).await?;
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn Io> = match config.security.tls.clone() {
            None => Box::new(stream),
            Some(tls) => {
                let name = server_name(addr).map_err(ClientError::Protocol)?;
                let connector = tokio_rustls::TlsConnector::from(tls);
                Box::new(
                    within(
                        limit,
                        addr,
                        "TLS handshake with",
                        connector.connect(name, stream),
                    )
                    .await?,
                )
            }
        };
        let mut conn = Connection {
            addr: addr.to_string(),
            stream,
            config,
            correlation_id: 0,
            broker_versions: HashMap::new(),
            broken: false,
        };
        conn.negotiate().await?;
        if let Some(sasl) = conn.config.security.sasl.clone() {
            conn.authenticate(&sasl).await?;
        }
        tracing::debug!(addr, apis = conn.broker_versions.len(), "connected");
        Ok(conn)
    }

    /// Shorthand for [`Connection::connect`] with a client id and one timeout for both the
    /// connect and each request.
    pub async fn connect_with(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let config = ConnectionConfig {
            client_id: client_id.to_string(),
            connect_timeout: timeout,
            request_timeout: timeout,
            ..ConnectionConfig::default()
        };
        Connection::connect(addr, config).await
    }

    /// The `host:port` this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// False once an error has left the stream in an unknown state.
    pub fn is_usable(&self) -> bool {
        !self.broken
    }

    /// The broker's advertised version range for `api`, if it implements it at all.
    pub fn broker_versions(&self, api: ApiKey) -> Option<VersionRange> {
        self.broker_versions.get(&(api as i16)).copied()
    }

    /// The highest version of request `R` both sides speak. This client's range is the
    /// crate's `ApiKey::valid_versions()` narrowed to the message's own `VERSIONS`
    /// (kafka-protocol 0.18 lists OffsetCommit/OffsetFetch v10 in the former, but the
    /// messages encode only up to v9).
    pub fn version_for<R: Request>(&self) -> Result<i16, ClientError> {
        let api = api_key::<R>()?;
        let ours = api.valid_versions().intersect(&R::VERSIONS);
        let theirs = self
            .broker_versions(api)
            .ok_or(ClientError::UnsupportedVersion { api })?;
        let both = ours.intersect(&theirs);
        if both.is_empty() {
            return Err(ClientError::UnsupportedVersion { api });
        }
        Ok(both.max)
    }

    /// Sends `req` at the highest version both sides support and returns the response.
    ///
    /// Fields that do not exist at the chosen version must be left at their defaults, or
    /// encoding fails with [`ClientError::Protocol`]; callers that build version-dependent
    /// requests use [`Connection::version_for`] and [`Connection::send_version`].
    /// Produce with `acks=0` has no response and must not be sent this way.
    pub async fn send<R: Request>(&mut self, req: R) -> Result<R::Response, ClientError> {
        let version = self.version_for::<R>()?;
        self.send_version(req, version).await
    }

    /// Sends `req` at exactly `version` (which the broker must advertise).
    pub async fn send_version<R: Request>(
        &mut self,
        req: R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let api = api_key::<R>()?;
        if !self
            .broker_versions(api)
            .is_some_and(|r| r.min <= version && version <= r.max)
        {
            return Err(ClientError::UnsupportedVersion { api });
        }
        let mut body = self.round_trip(api, version, &req).await?;
        match R::Response::decode(&mut body, version) {
            Ok(resp) => Ok(resp),
            Err(e) => Err(self.protocol(format!("cannot decode {api:?} v{version} response: {e}"))),
        }
    }

    /// ApiVersions, with KIP-511's fallback: a broker that does not know our version answers
    /// in v0 with UNSUPPORTED_VERSION and its own range, and we ask again in that version.
    async fn negotiate(&mut self) -> Result<(), ClientError> {
        let mut version = API_VERSIONS_FIRST;
        for _ in 0..2 {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("rill"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let body = self.round_trip(ApiKey::ApiVersions, version, &req).await?;
            // v0 and v3 bodies both start with the error code; a fallback answer is v0.
            let code = if body.len() >= 2 {
                i16::from_be_bytes([body[0], body[1]])
            } else {
                return Err(self.protocol("empty ApiVersions response".into()));
            };
            let decode_version = if code == UNSUPPORTED_VERSION {
                0
            } else {
                version
            };
            let resp = ApiVersionsResponse::decode(&mut body.clone(), decode_version)
                .map_err(|e| self.protocol(format!("cannot decode ApiVersions response: {e}")))?;
            if code == UNSUPPORTED_VERSION {
                let theirs = resp
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                let next = theirs.min(API_VERSIONS_FIRST);
                if next >= version {
                    return Err(ClientError::UnsupportedVersion {
                        api: ApiKey::ApiVersions,
                    });
                }
                tracing::debug!(addr = %self.addr, from = version, to = next, "ApiVersions fallback");
                version = next;
                continue;
            }
            ClientError::check(resp.error_code, None)?;
            self.broker_versions = resp
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.api_key,
                        VersionRange {
                            min: k.min_version,
                            max: k.max_version,
                        },
                    )
                })
                .collect();
            return Ok(());
        }
        Err(ClientError::UnsupportedVersion {
            api: ApiKey::ApiVersions,
        })
    }

    /// SaslHandshake v1, then SaslAuthenticate round trips (KIP-152).
    async fn authenticate(&mut self, sasl: &SaslCredentials) -> Result<(), ClientError> {
        let mechanism = sasl.mechanism.name();
        let resp: SaslHandshakeResponse = self
            .send_version(
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
                1,
            )
            .await?;
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(ClientError::Authentication(format!(
                "the broker refused SASL mechanism {mechanism} (it offers {})",
                offered.join(", ")
            )));
        }
        let version = self
            .broker_versions(ApiKey::SaslAuthenticate)
            .map_or(0, |r| r.max.min(2));
        let step =
            |token: Vec<u8>| SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", sasl.username, sasl.password).into_bytes();
                self.sasl_step(step(token), version).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut scram = ScramClient::new(
                    sasl.mechanism == SaslMechanism::ScramSha512,
                    &sasl.username,
                    &sasl.password,
                );
                let server_first = self.sasl_step(step(scram.first()), version).await?;
                let last = scram
                    .respond(&server_first)
                    .map_err(ClientError::Authentication)?;
                let server_final = self.sasl_step(step(last), version).await?;
                scram
                    .verify(&server_final)
                    .map_err(ClientError::Authentication)?;
            }
        }
        Ok(())
    }

    async fn sasl_step(
        &mut self,
        req: SaslAuthenticateRequest,
        version: i16,
    ) -> Result<Vec<u8>, ClientError> {
        let resp: SaslAuthenticateResponse = self.send_version(req, version).await?;
        if resp.error_code != 0 {
            return Err(ClientError::Authentication(
                resp.error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("SASL error code {}", resp.error_code)),
            ));
        }
        Ok(resp.auth_bytes.to_vec())
    }

    /// Writes one framed request and reads its framed response under the request timeout;
    /// checks the correlation id, decodes the response header and returns the body.
    async fn round_trip<B: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &B,
    ) -> Result<Bytes, ClientError> {
        if self.broken {
            return Err(ClientError::Io {
                addr: self.addr.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "connection is no longer usable after an earlier error",
                ),
            });
        }
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let frame = encode_request(&self.config.client_id, api, version, correlation_id, body)
            .map_err(ClientError::Protocol)?;
        let limit = self.config.request_timeout;
        let max = self.config.max_response_bytes;
        let addr = self.addr.clone();
        let stream = &mut self.stream;
        let io = async move {
            stream.write_all(&frame).await?;
            stream.flush().await?;
            let size = stream.read_i32().await?;
            if size < 4 || size as usize > max {
                let hint = if &size.to_be_bytes() == b"HTTP" {
                    " (an HTTP server answered: is this the Kafka port?)"
                } else {
                    " (is this a Kafka port?)"
                };
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response size {size} is outside 4..={max}{hint}"),
                ));
            }
            // Filled from the socket without zeroing first (a replica fetch brings 1 MiB),
            // reserving at most what a usual response needs: a peer's claimed size reserves
            // nothing more until its bytes arrive.
            let mut buf = Vec::with_capacity((size as usize).min(INITIAL_RESPONSE_CAPACITY));
            (&mut *stream)
                .take(size as u64)
                .read_to_end(&mut buf)
                .await?;
            if buf.len() != size as usize {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("response cut short: {} of {size} bytes", buf.len()),
                ));
            }
            Ok(Bytes::from(buf))
        };
        let frame = match tokio::time::timeout(limit, io).await {
            Ok(Ok(f)) => f,
            Ok(Err(source)) => {
                self.broken = true;
                return Err(ClientError::Io { addr, source });
            }
            Err(_) => {
                self.broken = true;
                return Err(ClientError::Timeout {
                    what: format!("{api:?} v{version} request to {addr}"),
                    after: limit,
                });
            }
        };
        let got = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if got != correlation_id {
            return Err(self.protocol(format!(
                "{api:?} response has correlation id {got}, expected {correlation_id}"
            )));
        }
        let mut body = frame;
        if let Err(e) = ResponseHeader::decode(&mut body, api.response_header_version(version)) {
            return Err(self.protocol(format!("bad {api:?} response header: {e}")));
        }
        Ok(body)
    }

    fn protocol(&mut self, msg: String) -> ClientError {
        self.broken = true;
        ClientError::Protocol(msg)
    }
}

/// `io` within `limit`, its failure named after `addr` (`what` says what timed out).
async fn within<T>(
    limit: std::time::Duration,
    addr: &str,
    what: &str,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, ClientError> {
    match tokio::time::timeout(limit, io).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ClientError::Io {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(ClientError::Timeout {
            what: format!("{what} {addr}"),
            after: limit,
        }),
    }
}

/// The API key of request type `R`.
fn api_key<R: Request>() -> Result<ApiKey, ClientError> {
    ApiKey::try_from(R::KEY)
        .map_err(|()| ClientError::Protocol(format!("unknown API key {}", R::KEY)))
}

/// Size prefix, request header (version from the API and its version), body.
fn encode_request<B: Encodable>(
    client_id: &str,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &B,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::with_capacity(128);
    buf.put_i32(0);
    header
        .encode(&mut buf, api.request_header_version(version))
        .map_err(|e| format!("cannot encode {api:?} v{version} request header: {e}"))?;
    body.encode(&mut buf, version)
        .map_err(|e| format!("cannot encode {api:?} v{version} request: {e}"))?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| "request too large".to_string())?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use tokio::net::TcpListener;

    /// A fake broker answering ApiVersions with `api_versions` (a closure over the request
    /// version) and every Metadata request with an empty response.
    async fn fake_broker(
        fallback_below: i16,
        metadata_delay: Duration,
        wrong_correlation: bool,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            loop {
                let Ok(size) = s.read_i32().await else { return };
                let mut buf = BytesMut::zeroed(size as usize);
                s.read_exact(&mut buf).await.unwrap();
                let mut frame = buf.freeze();
                let key = i16::from_be_bytes([frame[0], frame[1]]);
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                let api = ApiKey::try_from(key).unwrap();
                let header =
                    RequestHeader::decode(&mut frame, api.request_header_version(version)).unwrap();
                let mut out = BytesMut::new();
                out.put_i32(0);
                let cid = if wrong_correlation && api == ApiKey::Metadata {
                    header.correlation_id + 7
                } else {
                    header.correlation_id
                };
                let reply_version;
                ResponseHeader::default()
                    .with_correlation_id(cid)
                    .encode(&mut out, api.response_header_version(version))
                    .unwrap();
                match api {
                    ApiKey::ApiVersions => {
                        let keys = vec![
                            ApiVersion::default()
                                .with_api_key(ApiKey::ApiVersions as i16)
                                .with_min_version(0)
                                .with_max_version(fallback_below - 1),
                            ApiVersion::default()
                                .with_api_key(ApiKey::Metadata as i16)
                                .with_min_version(0)
                                .with_max_version(9),
                        ];
                        let (code, v) = if version >= fallback_below {
                            (UNSUPPORTED_VERSION, 0)
                        } else {
                            (0, version)
                        };
                        reply_version = v;
                        ApiVersionsResponse::default()
                            .with_error_code(code)
                            .with_api_keys(keys)
                            .encode(&mut out, reply_version)
                            .unwrap();
                    }
                    ApiKey::Metadata => {
                        assert_eq!(version, 9, "highest common Metadata version");
                        tokio::time::sleep(metadata_delay).await;
                        MetadataResponse::default()
                            .with_controller_id(kafka_protocol::messages::BrokerId(42))
                            .encode(&mut out, version)
                            .unwrap();
                    }
                    other => panic!("unexpected {other:?}"),
                }
                let len = (out.len() - 4) as i32;
                out[..4].copy_from_slice(&len.to_be_bytes());
                s.write_all(&out).await.unwrap();
            }
        });
        addr
    }

    fn cfg(timeout: Duration) -> ConnectionConfig {
        ConnectionConfig {
            client_id: "test".into(),
            connect_timeout: timeout,
            request_timeout: timeout,
            ..ConnectionConfig::default()
        }
    }

    #[tokio::test]
    async fn negotiates_and_picks_highest_common_version() {
        let addr = fake_broker(4, Duration::ZERO, false).await;
        let mut c = Connection::connect(&addr, cfg(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(c.version_for::<MetadataRequest>().unwrap(), 9);
        let resp = c.send(MetadataRequest::default()).await.unwrap();
        assert_eq!(resp.controller_id.0, 42);
        let err = c
            .version_for::<kafka_protocol::messages::ListGroupsRequest>()
            .unwrap_err();
        assert!(matches!(
            err,
            ClientError::UnsupportedVersion {
                api: ApiKey::ListGroups
            }
        ));
    }

    #[tokio::test]
    async fn falls_back_when_broker_is_older() {
        // The broker only speaks ApiVersions v0..=2: v3 gets the KIP-511 v0 answer.
        let addr = fake_broker(3, Duration::ZERO, false).await;
        let c = Connection::connect(&addr, cfg(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(
            c.broker_versions(ApiKey::Metadata),
            Some(VersionRange { min: 0, max: 9 })
        );
    }

    #[tokio::test]
    async fn request_timeout_breaks_the_connection() {
        let addr = fake_broker(4, Duration::from_secs(5), false).await;
        let mut c = Connection::connect(&addr, cfg(Duration::from_millis(300)))
            .await
            .unwrap();
        let err = c.send(MetadataRequest::default()).await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
        assert!(!c.is_usable());
        assert!(c.send(MetadataRequest::default()).await.is_err());
    }

    #[tokio::test]
    async fn wrong_correlation_id_is_a_protocol_error() {
        let addr = fake_broker(4, Duration::ZERO, true).await;
        let mut c = Connection::connect(&addr, cfg(Duration::from_secs(5)))
            .await
            .unwrap();
        let err = c.send(MetadataRequest::default()).await.unwrap_err();
        assert!(matches!(err, ClientError::Protocol(_)), "{err}");
    }

    #[tokio::test]
    async fn refused_connection_is_an_io_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = Connection::connect(&addr, cfg(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Io { .. }), "{err}");
    }
}
