//! Security records of the metadata image: SCRAM credentials (KIP-554) and, with the ACL
//! work, ACL bindings. They are replicated through the metadata log like topics, so every
//! broker authenticates with the same credentials; passwords are never stored, only SCRAM's
//! salted keys (RFC 5802: `StoredKey`, `ServerKey`), which cannot log anyone in.

use serde::{Deserialize, Serialize};

/// One user's credential for one SCRAM mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredScram {
    /// The salt the client salts its password with.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(ClientKey)`: verifies the client's proof.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    pub server_key: Vec<u8>,
}

/// A credential to set (AlterUserScramCredentials' upsertion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpsert {
    /// The user name (without `User:`).
    pub user: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The credential.
    pub credential: StoredScram,
}

/// A credential to remove (AlterUserScramCredentials' deletion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramDeletion {
    /// The user name.
    pub user: String,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
}
