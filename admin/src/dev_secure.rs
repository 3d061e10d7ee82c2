//! `rill dev --secure`: the dev cluster with every connection secured. A throw-away CA and a
//! broker certificate (for 127.0.0.1 and localhost, usable as server and client
//! certificate) are made once per data dir with rcgen, an admin SCRAM user gets a random
//! password, and a ready client config (`client.properties`, Kafka's keys) is written beside
//! them for `rill --command-config`, librdkafka, kcat or the Java tools. Clients come over
//! SASL_SSL (SCRAM); brokers reach each other on an INTERNAL listener over mutual TLS (each
//! presents the broker certificate: principal `User:CN=rill dev broker`), and the metadata
//! quorum runs over mutual TLS too. ACLs are enforced; the admin and the brokers are super
//! users. `rill dev` creates the admin user through INTERNAL with the broker certificate
//! (a SCRAM credential must exist before anyone can log in with it).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rill_client::security::SaslMechanism;
use rill_client::users::ScramChange;
use rill_client::{Cluster, ConnectionConfig};

/// The admin user `rill dev --secure` creates.
pub const ADMIN_USER: &str = "admin";
/// SCRAM iterations for the admin user.
const ADMIN_ITERATIONS: u32 = 8192;

/// The secured dev cluster's files.
pub struct Secure {
    /// The brokers' key and certificate chain.
    broker_pem: PathBuf,
    /// The dev CA's certificate.
    ca_pem: PathBuf,
    password: String,
}

/// The principal the broker certificate maps to (Kafka's DEFAULT rule: the subject DN).
pub const BROKER_PRINCIPAL: &str = "User:CN=rill dev broker";

/// Where `rill dev --secure` writes the client config for `data_dir`.
pub fn client_properties(data_dir: &Path) -> PathBuf {
    data_dir.join("secure").join("client.properties")
}

impl Secure {
    /// Makes (or reuses) the CA, the broker certificate and the admin password under
    /// `data_dir/secure`, and writes `client.properties`.
    pub fn prepare(data_dir: &Path) -> Result<Secure, String> {
        let dir = data_dir.join("secure");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let ca = dir.join("ca.pem");
        let broker_pem = dir.join("broker.pem");
        if !ca.exists() || !broker_pem.exists() {
            let (ca_pem, broker) = make_certificates()?;
            write(&ca, &ca_pem)?;
            write(&broker_pem, &broker)?;
        }
        let password_file = dir.join("admin.password");
        let password = match std::fs::read_to_string(&password_file) {
            Ok(p) if !p.trim().is_empty() => p.trim().to_string(),
            _ => {
                use rand::Rng;
                let p: String = rand::thread_rng()
                    .sample_iter(&rand::distributions::Alphanumeric)
                    .take(24)
                    .map(char::from)
                    .collect();
                write(&password_file, &p)?;
                p
            }
        };
        write(
            &client_properties(data_dir),
            &format!(
                "# A client config for the `rill dev --secure` cluster (Kafka's keys).\n\
                 security.protocol=SASL_SSL\n\
                 sasl.mechanism=SCRAM-SHA-512\n\
                 sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{ADMIN_USER}\" password=\"{password}\";\n\
                 ssl.truststore.type=PEM\n\
                 ssl.truststore.location={}\n",
                ca.display()
            ),
        )?;
        Ok(Secure {
            broker_pem,
            ca_pem: ca,
            password,
        })
    }

    /// The broker properties of one node: SASL_SSL for clients on `client_port`, INTERNAL
    /// (mutual TLS, loopback) for the brokers on `internal_port`, the quorum over mutual TLS.
    pub fn broker_props(
        &self,
        client_port: u16,
        internal_port: u16,
        controller_port: u16,
    ) -> Vec<String> {
        vec![
            format!(
                "listeners=SASL_SSL://127.0.0.1:{client_port},INTERNAL://127.0.0.1:{internal_port},CONTROLLER://127.0.0.1:{controller_port}"
            ),
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL".into(),
            "inter.broker.listener.name=INTERNAL".into(),
            "ssl.keystore.type=PEM".into(),
            format!("ssl.keystore.location={}", self.broker_pem.display()),
            "ssl.truststore.type=PEM".into(),
            format!("ssl.truststore.location={}", self.ca_pem.display()),
            "listener.name.internal.ssl.client.auth=required".into(),
            "listener.name.controller.ssl.client.auth=required".into(),
            "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256".into(),
            // ACLs on: the admin and the brokers (their certificate's principal) are super
            // users; everyone else needs ACLs.
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            format!("super.users=User:{ADMIN_USER};{BROKER_PRINCIPAL}"),
        ]
    }

    /// Creates the admin user's SCRAM credentials through an INTERNAL listener, presenting
    /// the broker certificate.
    pub fn create_admin(&self, internal_bootstrap: &str) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        rt.block_on(async {
            let security = rill_client::security::ClientSecurity::from_properties(
                &[
                    ("security.protocol", "SSL".to_string()),
                    ("ssl.truststore.type", "PEM".to_string()),
                    ("ssl.truststore.location", self.ca_pem.display().to_string()),
                    ("ssl.keystore.type", "PEM".to_string()),
                    (
                        "ssl.keystore.location",
                        self.broker_pem.display().to_string(),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            )?;
            let config = ConnectionConfig {
                client_id: "rill-dev".into(),
                request_timeout: Duration::from_secs(20),
                security,
                ..ConnectionConfig::default()
            };
            let cluster = Cluster::connect(internal_bootstrap, config)
                .await
                .map_err(|e| format!("cannot reach the cluster: {e}"))?;
            let changes: Vec<ScramChange> =
                [SaslMechanism::ScramSha512, SaslMechanism::ScramSha256]
                    .into_iter()
                    .map(|mechanism| ScramChange::Upsert {
                        user: ADMIN_USER.into(),
                        mechanism,
                        iterations: ADMIN_ITERATIONS,
                        password: self.password.clone(),
                    })
                    .collect();
            for (user, r) in cluster
                .alter_scram_users(&changes)
                .await
                .map_err(|e| format!("cannot create the admin user: {e}"))?
            {
                r.map_err(|e| format!("cannot create user {user}: {e}"))?;
            }
            Ok(())
        })
    }
}

/// Writes a file only its owner may read: the key, the admin password and the client
/// config are credentials (the broker certificate makes its holder a super user).
fn write(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// (CA certificate PEM, broker key + certificate + CA PEM).
fn make_certificates() -> Result<(String, String), String> {
    let err = |e: rcgen::Error| format!("cannot make the dev certificates: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rill dev CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "rill dev broker");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    // Brokers present it to clients and to each other (INTERNAL, the quorum).
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
    Ok((
        ca.pem(),
        format!("{}{}{}", key.serialize_pem(), cert.pem(), ca.pem()),
    ))
}
