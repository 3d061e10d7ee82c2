"""A throw-away PKI for the security tests: a CA, a server certificate for 127.0.0.1 and
localhost, client certificates (trusted, from another CA, expired), all PEM files in one
directory. Built with `cryptography` (PyPI), so no network and no fixed files in the repo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str, ou: str = "test") -> x509.Name:
    # Most general first, as openssl's -subj /O=../OU=../CN=.. writes it: the DN then reads
    # "CN=alice,OU=test,O=Rill" (RFC 2253 order, as Java's X500Principal prints it).
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rill"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Ca:
    key: object
    cert: x509.Certificate

    @staticmethod
    def new(cn: str) -> "Ca":
        key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, "ca"))
            .issuer_name(_name(cn, "ca"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return Ca(key, cert)

    def issue(self, cn: str, server: bool, days_valid=(-1, 30)):
        key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days_valid[0]))
            .not_valid_after(now + dt.timedelta(days=days_valid[1]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                # Brokers are clients of each other too (replication, the quorum's mutual TLS).
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                    if server
                    else [ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
        return key, b.sign(self.key, hashes.SHA256())


@dataclass
class Pki:
    dir: Path
    ca: Path  # the CA certificate (truststore for both sides)
    server: Path  # server key + chain, one PEM file (ssl.keystore.location)
    client_cert: Path  # CN=alice, trusted
    client_key: Path
    stranger_cert: Path  # CN=mallory, from another CA
    stranger_key: Path
    expired_cert: Path  # CN=alice, expired yesterday
    expired_key: Path

    def reissue_server(self, cn: str) -> None:
        """Overwrites the server's PEM file with a fresh certificate named `cn` (rotation)."""
        ca = self._ca
        key, cert = ca.issue(cn, server=True)
        tmp = self.server.with_suffix(".tmp")
        tmp.write_bytes(_pem_key(key) + _pem_cert(cert) + _pem_cert(ca.cert))
        tmp.replace(self.server)


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = Ca.new("rill-test-ca")
    other = Ca.new("other-ca")
    (d / "ca.pem").write_bytes(_pem_cert(ca.cert))
    key, cert = ca.issue("broker", server=True)
    (d / "server.pem").write_bytes(_pem_key(key) + _pem_cert(cert) + _pem_cert(ca.cert))
    for name, issuer, cn, days in [
        ("client", ca, "alice", (-1, 30)),
        ("stranger", other, "mallory", (-1, 30)),
        ("expired", ca, "alice", (-10, -1)),
    ]:
        key, cert = issuer.issue(cn, server=False, days_valid=days)
        (d / f"{name}.key").write_bytes(_pem_key(key))
        (d / f"{name}.pem").write_bytes(_pem_cert(cert))
    pki = Pki(
        dir=d,
        ca=d / "ca.pem",
        server=d / "server.pem",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        stranger_cert=d / "stranger.pem",
        stranger_key=d / "stranger.key",
        expired_cert=d / "expired.pem",
        expired_key=d / "expired.key",
    )
    pki._ca = ca
    return pki
