"""The lab's throwaway certificate authority and a certificate per host, for TLS between hosts.

One key pair per host serves all its roles: libvirtd's TLS listener and its client side (P2P
migration opens the destination's URI from the source's libvirtd), QEMU's migration TLS, and
ovsdb-server's ssl: remote. Each is written under the file names its consumer looks for:

  <pki>/<host>/libvirt/   cacert.pem servercert.pem serverkey.pem clientcert.pem clientkey.pem
  <pki>/<host>/qemu/      ca-cert.pem server-cert.pem server-key.pem client-cert.pem client-key.pem
  <pki>/client/           cacert.pem clientcert.pem clientkey.pem  (the user's: ?pkipath=<pki>/client)

The certificates name the host's loopback address (IP subjectAltName): libvirt and QEMU check the
server's certificate against the address the URI or migration_host names.

Made with the `cryptography` package rather than GnuTLS's certtool: no template files to write and
no subprocess per certificate, and the keys never leave this process unencrypted except into 0600
files (README, "Libraries, and why").
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# (CA, server cert, server key, client cert, client key) as libvirt and QEMU look for them
LIBVIRT_NAMES = ("cacert", "servercert", "serverkey", "clientcert", "clientkey")
QEMU_NAMES = ("ca-cert", "server-cert", "server-key", "client-cert", "client-key")
VALID_DAYS = 30  # a lab lives for hours; a month covers a lab left up over a long weekend


@dataclass(frozen=True)
class Authority:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def create_authority(common_name: str) -> Authority:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(ca: Authority, common_name: str, addresses: list[str]) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for both TLS roles, valid for `addresses`."""
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "virtnet lab"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses] + [x509.DNSName(common_name)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass(frozen=True)
class HostFiles:
    """Where one host's TLS files are, by consumer."""

    base: Path

    @property
    def libvirt(self) -> Path:
        return self.base / "libvirt"

    @property
    def qemu(self) -> Path:
        return self.base / "qemu"

    @property
    def ca(self) -> Path:
        return self.libvirt / "cacert.pem"

    @property
    def cert(self) -> Path:
        return self.libvirt / "servercert.pem"

    @property
    def key(self) -> Path:
        return self.libvirt / "serverkey.pem"


def write_host(ca: Authority, base: Path, common_name: str, addresses: list[str]) -> HostFiles:
    cert, key = issue(ca, common_name, addresses)
    files = HostFiles(base)
    _write_set(files.libvirt, ca.pem, cert, key, LIBVIRT_NAMES)
    _write_set(files.qemu, ca.pem, cert, key, QEMU_NAMES)
    return files


def write_client(ca: Authority, base: Path, common_name: str = "virtnet lab client") -> Path:
    """The user's (and tests') client files, in the layout libvirt's ?pkipath= expects."""
    cert, key = issue(ca, common_name, ["127.0.0.1"])
    base.mkdir(parents=True, exist_ok=True)
    _write(base / "cacert.pem", ca.pem)
    _write(base / "clientcert.pem", cert)
    _write(base / "clientkey.pem", key, private=True)
    return base


def _write_set(directory: Path, ca: bytes, cert: bytes, key: bytes, names: tuple[str, ...]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ca_name, server_cert, server_key, client_cert, client_key = names
    _write(directory / f"{ca_name}.pem", ca)
    for name in (server_cert, client_cert):
        _write(directory / f"{name}.pem", cert)
    for name in (server_key, client_key):
        _write(directory / f"{name}.pem", key, private=True)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key() -> rsa.RSAPrivateKey:
    # RSA rather than ECDSA: libvirt's GnuTLS checks ask for keyEncipherment, which an RSA key has.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
