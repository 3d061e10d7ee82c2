//! Connections from this node's transaction coordinator to the other nodes: WriteTxnMarkers
//! to partition leaders, and (KIP-890) a partition leader's AddPartitionsToTxn verification
//! to a coordinator. One connection per node, dialled on first use and again after it breaks,
//! to the address the metadata image gives (the node's inter-broker listener), with the
//! inter-broker security; one request at a time per node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::protocol::Request;
use rill_client::security::ClientSecurity;
use rill_client::{ClientError, Connection, ConnectionConfig};

use crate::types::BrokerId;

/// How long one request to another node may take: a WriteTxnMarkers answer waits for the
/// markers' ISR (`markers::MARKER_APPEND_TIMEOUT`), plus slack for the round trip.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

/// The connections.
pub struct PeerClient {
    node: BrokerId,
    security: ClientSecurity,
    slots: Mutex<HashMap<BrokerId, Slot>>,
}

/// One node's connection and the address it was made to.
struct Slot {
    addr: String,
    conn: Arc<tokio::sync::Mutex<Option<Connection>>>,
}

impl PeerClient {
    /// A client for node `node` (named in its client id) connecting with `security`.
    pub fn new(node: BrokerId, security: ClientSecurity) -> PeerClient {
        PeerClient {
            node,
            security,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `req` to node `to` at `addr`, at `version` or else the highest both sides
    /// serve.
    pub async fn send<R: Request>(
        &self,
        to: BrokerId,
        addr: &str,
        req: R,
        version: Option<i16>,
    ) -> Result<R::Response, ClientError> {
        let conn = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(to).or_insert_with(|| Slot {
                addr: addr.to_string(),
                conn: Arc::new(tokio::sync::Mutex::new(None)),
            });
            if slot.addr != addr {
                // The node moved (a restart on another port): drop the old connection.
                *slot = Slot {
                    addr: addr.to_string(),
                    conn: Arc::new(tokio::sync::Mutex::new(None)),
                };
            }
            slot.conn.clone()
        };
        let mut guard = conn.lock().await;
        if !guard.as_ref().is_some_and(Connection::is_usable) {
            let config = ConnectionConfig {
                client_id: format!("rill-txn-{}", self.node.0),
                connect_timeout: Duration::from_secs(5),
                request_timeout: PEER_REQUEST_TIMEOUT,
                security: self.security.clone(),
                ..ConnectionConfig::default()
            };
            *guard = Some(Connection::connect(addr, config).await?);
        }
        let Some(c) = guard.as_mut() else {
            return Err(ClientError::UnknownNode(to.0));
        };
        let r = match version {
            Some(v) => c.send_version(req, v).await,
            None => c.send(req).await,
        };
        if r.is_err() {
            *guard = None;
        }
        r
    }
}
