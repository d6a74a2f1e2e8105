"""Unwrap a stored private key into DER, whatever form it was stored in.

:func:`decode` takes PEM (real, CRLF or escaped ``\\n`` newlines, collapsed onto one line,
or pasted with the quotes of a JSON string), base64 of a PEM file, base64 DER, or raw DER
bytes, and returns a :class:`Blob`: the DER, the container (for the DEBUG log), the PEM
label and, for legacy ``Proc-Type: 4,ENCRYPTED`` PEM, the canonical PEM text and the
``DEK-Info`` cipher that ``cryptography`` needs to decrypt it. Certificates, public keys,
SSH public keys, OpenSSH and unknown private-key blocks are refused here; messages name
``source`` and never contain key material. Standard library only:
:mod:`gds_snowflake._keys` loads the result with ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

from gds_snowflake._der import is_der
from gds_snowflake._errors import PrivateKeyError, UnsupportedPrivateKeyError

__all__ = ["MIN_RSA_BITS", "STRUCTURES", "SUPPORTED_TYPES", "Blob", "decode"]

MIN_RSA_BITS = 2048  # bits; Snowflake rejects smaller RSA keys
SUPPORTED_TYPES = (
    f"Snowflake key-pair authentication accepts RSA keys of {MIN_RSA_BITS} bits or more "
    "(and EC keys on P-256, P-384 or P-521); create one with "
    "`openssl genrsa 2048 | openssl pkcs8 -topk8 -v2 aes-256-cbc -out rsa_key.p8` "
    "and register its public key with ALTER USER ... SET RSA_PUBLIC_KEY"
)

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_ESCAPES = re.compile(r"(?:\\+[rn])+")  # literal backslash-n runs from JSON / env vars
_PROC_TYPE = re.compile(r"Proc-Type:\s*(\S+)")
_DEK_INFO = re.compile(r"DEK-Info:\s*([A-Za-z0-9-]+),([0-9A-Fa-f]+)(?=\s)")
_SSH_PUBLIC = re.compile(r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-\S+) ")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
STRUCTURES = {
    "PRIVATE KEY": "PKCS#8",
    "ENCRYPTED PRIVATE KEY": "PKCS#8",
    "RSA PRIVATE KEY": "PKCS#1",
    "EC PRIVATE KEY": "SEC1",
}
_NOT_PRIVATE = {
    "CERTIFICATE": "a certificate",
    "TRUSTED CERTIFICATE": "a certificate",
    "X509 CERTIFICATE": "a certificate",
    "CERTIFICATE REQUEST": "a certificate signing request",
    "NEW CERTIFICATE REQUEST": "a certificate signing request",
    "PUBLIC KEY": "a public key",
    "RSA PUBLIC KEY": "a public key",
}


class Blob(NamedTuple):
    der: bytes
    container: str  # "PEM", "base64 DER", ... for the DEBUG log
    label: str | None = None  # PEM label
    legacy_pem: bytes | None = None  # canonical PEM text when Proc-Type says ENCRYPTED
    dek_cipher: str | None = None


def decode(material: object, source: str) -> Blob:
    """Turn any accepted form into DER (plus the PEM text when it has legacy encryption)."""
    if not isinstance(material, (str, bytes)):
        raise PrivateKeyError(
            f"The private key in {source} must be a string or bytes, not "
            f"{type(material).__name__}: store the PEM text of the key."
        )
    if isinstance(material, bytes):
        if is_der(material):
            return Blob(material, "DER")
        try:
            material = material.decode("utf-8")
        except UnicodeDecodeError:
            raise PrivateKeyError(
                f"The private key in {source} is neither text (PEM or base64) nor DER: "
                "store the PEM text of the key."
            ) from None
    text = _clean(material)
    if not text:
        raise PrivateKeyError(
            f"The private key in {source} is empty: store the PEM text of the key, from "
            "-----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----."
        )
    if "-----BEGIN" in text:
        return _from_pem(text, "PEM", source)
    if _SSH_PUBLIC.match(text):
        raise PrivateKeyError(
            f"The value in {source} is an SSH public key, not a private key: store the "
            "private key (PEM, -----BEGIN PRIVATE KEY-----) instead."
        )
    raw = _b64(text, source)
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            inner = _clean(raw.decode("utf-8"))
        except UnicodeDecodeError:
            inner = ""
        return _from_pem(inner, "base64-encoded PEM", source)
    return Blob(raw, "base64 DER")


def _clean(text: str) -> str:
    text = _ESCAPES.sub("\n", text.replace("\ufeff", "")).replace("\\/", "/").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()  # a JSON string pasted with its quotes
    return text


def _b64(text: str, source: str, what: str | None = None) -> bytes:
    compact = "".join(text.split())
    if not _BASE64.fullmatch(compact):
        problem = "is not valid base64" if what else "is neither PEM nor base64"
        raise PrivateKeyError(
            f"{what or f'The private key in {source}'} {problem}: store the PEM text of "
            "the key, from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----."
        )
    compact += "=" * (-len(compact) % 4 if "=" not in compact else 0)
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        raise PrivateKeyError(
            f"The private key in {source} is damaged base64 (truncated or mis-pasted): "
            "store the whole key again."
        ) from None


def _from_pem(text: str, container: str, source: str) -> Blob:
    blocks = _PEM_BLOCK.findall(text)
    private = [(label, body) for label, body in blocks if label.endswith("PRIVATE KEY")]
    if not private:
        found = {_NOT_PRIVATE[label] for label, _ in blocks if label in _NOT_PRIVATE}
        if found:
            raise PrivateKeyError(
                f"The value in {source} is {' and '.join(sorted(found))}, not a private "
                "key: Snowflake key-pair authentication needs the private key "
                "(-----BEGIN PRIVATE KEY-----); keep the public key for ALTER USER."
            )
        if not blocks:
            raise PrivateKeyError(
                f"The PEM in {source} is incomplete (a BEGIN line without its END line, "
                "perhaps truncated): store the whole key again."
            )
        raise PrivateKeyError(
            f"The PEM in {source} holds no private key (found {blocks[0][0]!r}): store the "
            "private key, -----BEGIN PRIVATE KEY-----."
        )
    if len(private) > 1:
        raise PrivateKeyError(
            f"The PEM in {source} holds {len(private)} private keys: store exactly one."
        )
    label, body = private[0]
    if label == "OPENSSH PRIVATE KEY":
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} is in OpenSSH format: convert a copy to PKCS#8 "
            "with `ssh-keygen -p -m PKCS8 -f <copy of the key file>` and store that."
        )
    if label not in STRUCTURES:
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} is a {label!r} block, which cannot be used. "
            f"{SUPPORTED_TYPES}."
        )
    proc, dek = _PROC_TYPE.search(body), _DEK_INFO.search(body)
    if proc:
        body = body[: proc.start()] + body[proc.end() :]
    if dek:
        body = body.replace(dek.group(0), "")
    encrypted = proc is not None and "ENCRYPTED" in proc.group(1).upper()
    if encrypted and dek is None:
        raise PrivateKeyError(
            f"The PEM in {source} says it is encrypted but its DEK-Info header is missing "
            "or damaged: store the whole key again."
        )
    der = _b64(body, source, what=f"The PEM body in {source}")
    if not encrypted or dek is None:
        return Blob(der, container, label)
    b64 = base64.b64encode(der).decode("ascii")
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    pem = (
        f"-----BEGIN {label}-----\nProc-Type: 4,ENCRYPTED\n"
        f"DEK-Info: {dek.group(1).upper()},{dek.group(2)}\n\n{lines}\n-----END {label}-----\n"
    )
    return Blob(der, container, label, pem.encode("ascii"), dek.group(1).upper())
