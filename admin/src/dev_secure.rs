//! `rill dev --secure`: the dev cluster behind SASL_SSL. A throw-away CA and a broker
//! certificate (for 127.0.0.1 and localhost) are made once per data dir with rcgen, an admin
//! SCRAM user gets a random password, and a ready client config (`client.properties`, Kafka's
//! keys) is written beside them for `rill --command-config`, librdkafka, kcat or the Java
//! tools. ACLs are enforced (the admin is a super user). Brokers reach each other on an
//! INTERNAL PLAINTEXT listener on loopback, through which `rill dev` also creates the admin
//! user (a SCRAM credential must exist before anyone can log in with it); its anonymous
//! principal is a super user too.

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
    password: String,
}

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
            password,
        })
    }

    /// The broker properties of one node: SASL_SSL for clients on `client_port`, INTERNAL
    /// (PLAINTEXT, loopback) for the brokers on `internal_port`.
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
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
            "inter.broker.listener.name=INTERNAL".into(),
            "ssl.keystore.type=PEM".into(),
            format!("ssl.keystore.location={}", self.broker_pem.display()),
            "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256".into(),
            // ACLs on: the admin and the loopback-only INTERNAL listener (User:ANONYMOUS,
            // which replication uses) are super users; everyone else needs ACLs.
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            format!("super.users=User:{ADMIN_USER};User:ANONYMOUS"),
        ]
    }

    /// Creates the admin user's SCRAM credentials through an INTERNAL listener.
    pub fn create_admin(&self, internal_bootstrap: &str) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        rt.block_on(async {
            let config = ConnectionConfig {
                client_id: "rill-dev".into(),
                request_timeout: Duration::from_secs(20),
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

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
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
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
    Ok((
        ca.pem(),
        format!("{}{}{}", key.serialize_pem(), cert.pem(), ca.pem()),
    ))
}
