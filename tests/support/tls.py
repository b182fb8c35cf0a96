"""
A throwaway PKI for TLS tests, made at test time with C{cryptography} so no
key is ever committed: a CA that issues server certificates, self-signed
certificates from no CA, and a helper to write PEM files.

Keys are EC P-256 (fast to generate); certificates are valid from an hour ago
to a day from now, so clock skew between the test and the server cannot
matter.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA", "makeCA", "selfSigned", "writePEM"]


def _newKey() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _keyPEM(key: ec.EllipticCurvePrivateKey) -> bytes:
    """C{key} as unencrypted PKCS#8 PEM, as C{privateKey=} files hold it."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(commonName: str) -> x509.Name:
    """A subject or issuer name with only a common name."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, commonName)])


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    """Not-before an hour ago, not-after a day from now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)


def _subjectAltName(hostname: str) -> x509.SubjectAlternativeName:
    """An IPAddress entry for an IP literal, a DNSName entry otherwise."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return x509.SubjectAlternativeName([x509.DNSName(hostname)])
    return x509.SubjectAlternativeName([x509.IPAddress(address)])


def _serverCertificate(
    hostname: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signingKey: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A leaf certificate for C{hostname}, signed by C{signingKey}."""
    notBefore, notAfter = _validity()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(hostname))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
        .add_extension(_subjectAltName(hostname), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(signingKey, hashes.SHA256())
    )


class TestCA:
    """A private certificate authority whose certificate tests trust."""

    # Not a test class, whatever its name says.
    __test__ = False

    def __init__(self, name: str = "Test CA") -> None:
        self._key = _newKey()
        self._name = _name(name)
        notBefore, notAfter = _validity()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(notBefore)
            .not_valid_after(notAfter)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.certPEM: bytes = self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, hostname: str) -> tuple[bytes, bytes]:
        """
        Issue a server certificate for C{hostname} (a DNS name or an IP
        literal such as C{127.0.0.1} or C{::1}).

        @return: the certificate PEM and its private key PEM.
        """
        key = _newKey()
        certificate = _serverCertificate(hostname, key, self._name, self._key)
        return certificate.public_bytes(serialization.Encoding.PEM), _keyPEM(key)


def makeCA(name: str = "Test CA") -> TestCA:
    """A new throwaway CA called C{name}."""
    return TestCA(name)


def selfSigned(hostname: str) -> tuple[bytes, bytes]:
    """
    A certificate for C{hostname} signed by its own key, from no CA.

    @return: the certificate PEM and its private key PEM.
    """
    key = _newKey()
    certificate = _serverCertificate(hostname, key, _name(hostname), key)
    return certificate.public_bytes(serialization.Encoding.PEM), _keyPEM(key)


def writePEM(directory: str, name: str, data: bytes) -> str:
    """Write C{data} to C{directory}/C{name} and return that path."""
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path
