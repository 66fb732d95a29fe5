"""Throw-away X.509 material for the test harness, made with ``cryptography``.

What it does:

* :func:`make_ca` creates a self-signed EC P-256 certificate authority.
* :func:`make_server_cert` issues a server certificate (``127.0.0.1`` and
  ``localhost`` by default) signed by such a CA.
* :func:`write_tls_material` writes a CA bundle, certificate and key as PEM files.

What it does not do: nothing here is fit for production (short-lived keys on
disk, unencrypted, no revocation); it never touches the system trust store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "TlsMaterial",
    "cert_pem",
    "key_pem",
    "make_ca",
    "make_server_cert",
    "write_tls_material",
]

_VALIDITY = dt.timedelta(days=2)
_BACKDATE = dt.timedelta(hours=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "alga-release test harness"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return a new EC P-256 key and a self-signed CA certificate for it.

    The certificate is a proper CA (``basicConstraints CA:TRUE``, key usage
    ``digitalSignature, keyCertSign, cRLSign``, subject/authority key ids), so
    it can both sign other certificates and be used directly as a signing
    certificate whose chain is just itself (as the token server does).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    dns_names: tuple[str, ...] = ("localhost",),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Return a key and a TLS server certificate signed by ``ca_cert``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns_names[0] if dns_names else ip_addresses[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM encoding of ``cert``."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM encoding of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of PEM files for a TLS server: CA bundle (for clients), cert and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def write_tls_material(directory: Path, common_name: str = "harness-registry-ca") -> TlsMaterial:
    """Create a CA and a loopback server certificate and write them under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(common_name)
    key, cert = make_server_cert(ca_key, ca_cert)
    material = TlsMaterial(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
    )
    material.ca_file.write_bytes(cert_pem(ca_cert))
    material.cert_file.write_bytes(cert_pem(cert))
    material.key_file.write_bytes(key_pem(key))
    material.key_file.chmod(0o600)
    return material
