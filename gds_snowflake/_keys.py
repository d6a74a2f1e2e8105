"""Normalise a Snowflake private key read from Vault into the bytes the connector wants.

Secrets hold keys in every form people produce: PEM PKCS#8 (encrypted or not), PEM
PKCS#1 / SEC1 (optionally with legacy ``Proc-Type``/``DEK-Info`` encryption), DER, base64
of either, with real, CRLF or escaped (``\\n``) newlines, or collapsed onto one line by a
web form. :func:`load_private_key` turns all of them into a :class:`LoadedKey` carrying
unencrypted DER PKCS#8, which ``snowflake.connector.connect(private_key=...)`` accepts.

Choices worth knowing:

* A passphrase given for a key that is not encrypted is ignored (logged at DEBUG): a
  secret that keeps ``private_key_passphrase`` after the key was stored unencrypted is
  harmless, and refusing it would break jobs for no security gain.
* Whether a key is encrypted, and with which scheme, is read from the structure (the PEM
  label, the ``Proc-Type`` header, or the algorithm OID of a DER
  ``EncryptedPrivateKeyInfo``), not from error text.
  Legacy PBES1 / PKCS#12-PBE schemes that ``cryptography`` can decrypt are accepted; the
  ones it cannot raise :class:`UnsupportedPrivateKeyError` with the ``openssl`` command
  that re-encrypts the key with PBES2. Only to tell "cannot decrypt this scheme" from
  "wrong passphrase" for such legacy schemes does the code look at cryptography's message.
* Messages name ``source`` (the secret field) and never contain key material, base64 of
  it, or the passphrase.

``cryptography`` is imported inside :func:`load_private_key`, so importing this module
costs only the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from gds_snowflake._errors import (
    PrivateKeyError,
    PrivateKeyPassphraseError,
    UnsupportedPrivateKeyError,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["REENCRYPT_COMMAND", "LoadedKey", "load_private_key"]

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 2048  # bits; Snowflake rejects smaller RSA keys
# Curves snowflake-connector-python signs with (ES256 / ES384 / ES512).
SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
REENCRYPT_COMMAND = "openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.p8 -out new.p8"
_SUPPORTED_TYPES = (
    f"Snowflake key-pair authentication accepts RSA keys of {MIN_RSA_BITS} bits or more "
    "(and EC keys on P-256, P-384 or P-521); create one with "
    "`openssl genrsa 2048 | openssl pkcs8 -topk8 -v2 aes-256-cbc -out rsa_key.p8` "
    "and register its public key with ALTER USER ... SET RSA_PUBLIC_KEY"
)
_REENCRYPT_ADVICE = (
    f"re-encrypt it with PBES2 using `{REENCRYPT_COMMAND}` (OpenSSL 3 may need "
    "`-provider legacy -provider default` to read the old key) and store new.p8 instead"
)

# PBES2 parts that cryptography has decrypted for many releases: a failure with one of
# these means the passphrase (or the ciphertext) is wrong, not that the scheme is unknown.
_PBES2 = "1.2.840.113549.1.5.13"
_KDFS = {"1.2.840.113549.1.5.12": "PBKDF2", "1.3.6.1.4.1.11591.4.11": "scrypt"}
_PRFS = {
    f"1.2.840.113549.2.{n}": f"HMAC-SHA{b}"
    for n, b in ((7, 1), (8, 224), (9, 256), (10, 384), (11, 512))
}
_CIPHERS = {
    "2.16.840.1.101.3.4.1.2": "AES-128-CBC",
    "2.16.840.1.101.3.4.1.22": "AES-192-CBC",
    "2.16.840.1.101.3.4.1.42": "AES-256-CBC",
    "1.2.840.113549.3.7": "DES-EDE3-CBC",
}
_LEGACY_PBE = {  # PKCS#5 v1.5 (PBES1) and PKCS#12 password-based encryption
    "1.2.840.113549.1.5.1": "PBES1 pbeWithMD2AndDES-CBC",
    "1.2.840.113549.1.5.3": "PBES1 pbeWithMD5AndDES-CBC",
    "1.2.840.113549.1.5.4": "PBES1 pbeWithMD2AndRC2-CBC",
    "1.2.840.113549.1.5.6": "PBES1 pbeWithMD5AndRC2-CBC",
    "1.2.840.113549.1.5.10": "PBES1 pbeWithSHA1AndDES-CBC",
    "1.2.840.113549.1.5.11": "PBES1 pbeWithSHA1AndRC2-CBC",
    "1.2.840.113549.1.12.1.1": "PKCS#12 pbeWithSHAAnd128BitRC4",
    "1.2.840.113549.1.12.1.2": "PKCS#12 pbeWithSHAAnd40BitRC4",
    "1.2.840.113549.1.12.1.3": "PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC",
    "1.2.840.113549.1.12.1.4": "PKCS#12 pbeWithSHAAnd2-KeyTripleDES-CBC",
    "1.2.840.113549.1.12.1.5": "PKCS#12 pbeWithSHAAnd128BitRC2-CBC",
    "1.2.840.113549.1.12.1.6": "PKCS#12 pbeWithSHAAnd40BitRC2-CBC",
}
_PEM_CIPHERS = {"AES-128-CBC", "AES-256-CBC", "DES-EDE3-CBC"}  # DEK-Info cryptography reads
_KEY_OIDS = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.10045.2.1": "EC",
    "1.2.840.10040.4.1": "DSA",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
}

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_ESCAPES = re.compile(r"(?:\\+[rn])+")  # literal backslash-n runs from JSON / env vars
_PROC_TYPE = re.compile(r"Proc-Type:\s*(\S+)")
_DEK_INFO = re.compile(r"DEK-Info:\s*([A-Za-z0-9-]+),([0-9A-Fa-f]+)(?=\s)")
_SSH_PUBLIC = re.compile(r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-\S+) ")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_STRUCTURES = {
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


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedKey:
    """A private key ready for ``snowflake.connector.connect(private_key=der_pkcs8)``.

    Attributes:
        der_pkcs8: the key as unencrypted DER PKCS#8 (never shown by ``repr``).
        key_type: ``"RSA"`` or ``"EC"``.
        key_size: modulus size in bits for RSA, curve size in bits for EC.
        curve: the curve name (``"secp256r1"``, ...) for EC keys, ``None`` for RSA.
        was_encrypted: whether the stored key was protected by a passphrase.
        public_key_fingerprint: ``"SHA256:<base64>"`` as ``DESC USER`` shows in
            RSA_PUBLIC_KEY_FP and as the connector puts in the JWT ``iss`` claim.
    """

    der_pkcs8: bytes = field(repr=False)
    key_type: str
    key_size: int
    curve: str | None
    was_encrypted: bool
    public_key_fingerprint: str


class _Blob(NamedTuple):
    der: bytes
    container: str  # "PEM", "base64 DER", ... for the DEBUG log
    label: str | None = None  # PEM label
    legacy_pem: bytes | None = None  # canonical PEM text when Proc-Type says ENCRYPTED
    dek_cipher: str | None = None


class _Der(NamedTuple):
    kind: str  # pkcs8, pkcs8-encrypted, pkcs1, sec1, dsa, public, certificate, pkcs12, unknown
    oid: str | None = None  # key algorithm (pkcs8) or encryption algorithm (encrypted)
    scheme: str | None = None  # human name of the encryption scheme
    modern: bool = False  # PBES2 with parts cryptography is known to decrypt


def load_private_key(
    material: str | bytes, passphrase: str | bytes | None = None, *, source: str = "private_key"
) -> LoadedKey:
    """Load a Snowflake private key stored in any common form.

    Args:
        material: the key as PEM (PKCS#8, PKCS#1 or SEC1; real, CRLF or escaped ``\\n``
            newlines, or collapsed to one line), base64 of a PEM file, base64 DER, or raw
            DER bytes.
        passphrase: the passphrase of an encrypted key; ``None`` or empty means none. It
            is ignored (DEBUG log) when the key turns out not to be encrypted.
        source: where the key came from, used in error messages, e.g.
            ``"field 'private_key' of secret secret/snowflake/etl"``.

    Returns:
        The key as unencrypted DER PKCS#8 with its type, size and fingerprint.

    Raises:
        PrivateKeyPassphraseError: the key is encrypted and the passphrase is missing or
            wrong.
        UnsupportedPrivateKeyError: the key type, size or encryption scheme cannot be
            used (DSA, Ed25519, RSA under 2048 bits, PBES1 that cannot be decrypted, ...).
        PrivateKeyError: anything else: not a key, corrupt, truncated, a certificate or a
            public key.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    password = _password(passphrase, source)
    blob = _decode(material, source)
    info = _Der("pkcs8-encrypted") if blob.legacy_pem else _inspect(blob.der)
    _reject_non_keys(info, source)
    encrypted = blob.legacy_pem is not None or info.kind == "pkcs8-encrypted"
    scheme, modern = info.scheme, info.modern
    if blob.dek_cipher is not None:
        scheme = f"legacy PEM encryption {blob.dek_cipher}"
        modern = blob.dek_cipher in _PEM_CIPHERS
    if encrypted and password is None:
        hint = "" if modern else f" It uses {scheme}; if loading still fails, {_REENCRYPT_ADVICE}."
        raise PrivateKeyPassphraseError(
            f"The private key in {source} is encrypted but no passphrase was given: add the "
            f"passphrase to the secret as field `private_key_passphrase`.{hint}"
        )
    if not encrypted and password is not None:
        logger.debug("private key in %s is not encrypted; the passphrase is ignored", source)
        password = None
    try:
        if blob.legacy_pem is not None:
            key = serialization.load_pem_private_key(blob.legacy_pem, password)
        else:
            key = serialization.load_der_private_key(blob.der, password)
    except UnsupportedAlgorithm as exc:
        if encrypted:
            raise UnsupportedPrivateKeyError(
                f"The private key in {source} is encrypted with {scheme}, which this "
                f"installation cannot decrypt: {_REENCRYPT_ADVICE}."
            ) from exc
        what = _KEY_OIDS.get(info.oid or "", "an unknown key type")
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} uses {what}, which cannot be loaded. {_SUPPORTED_TYPES}."
        ) from exc
    except (ValueError, TypeError) as exc:
        if not encrypted:
            structure = _describe(info)
            parsed_as = f" as {structure}" if structure else ""
            raise PrivateKeyError(
                f"The private key in {source} cannot be parsed{parsed_as}: it is corrupt, "
                "truncated or mis-pasted. Store the whole key again, from -----BEGIN PRIVATE "
                "KEY----- to -----END PRIVATE KEY-----."
            ) from exc
        # cryptography says "Unknown key encryption algorithm: <oid>" (PKCS#8) or "Key
        # encrypted with unknown cipher" (PEM) for schemes it lacks; its generic message
        # for undecodable output mentions "unsupported", so only "unknown" counts here.
        if not modern and "unknown" in str(exc).lower():
            raise UnsupportedPrivateKeyError(
                f"The private key in {source} is encrypted with {scheme}, which this "
                f"installation cannot decrypt: {_REENCRYPT_ADVICE}."
            ) from exc
        hint = "" if modern else f" If the passphrase is right, {_REENCRYPT_ADVICE}."
        raise PrivateKeyPassphraseError(
            f"The passphrase for the encrypted private key in {source} is wrong (or the "
            "key is damaged): check field `private_key_passphrase` of the secret, "
            f"including stray spaces or a trailing newline.{hint}"
        ) from exc
    return _finish(key, blob, info, encrypted, scheme, source)


def _password(passphrase: object, source: str) -> bytes | None:
    if passphrase is None:
        return None
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes):
        raise PrivateKeyPassphraseError(
            f"The passphrase for the private key in {source} must be a string or bytes, "
            f"not {type(passphrase).__name__}."
        )
    return passphrase or None


def _decode(material: object, source: str) -> _Blob:
    """Turn any accepted form into DER (plus the PEM text when it has legacy encryption)."""
    if not isinstance(material, (str, bytes)):
        raise PrivateKeyError(
            f"The private key in {source} must be a string or bytes, not "
            f"{type(material).__name__}: store the PEM text of the key."
        )
    if isinstance(material, bytes):
        if _is_der(material):
            return _Blob(material, "DER")
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
    return _Blob(raw, "base64 DER")


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


def _from_pem(text: str, container: str, source: str) -> _Blob:
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
    if label not in _STRUCTURES:
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} is a {label!r} block, which cannot be used. "
            f"{_SUPPORTED_TYPES}."
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
        return _Blob(der, container, label)
    b64 = base64.b64encode(der).decode("ascii")
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    pem = (
        f"-----BEGIN {label}-----\nProc-Type: 4,ENCRYPTED\n"
        f"DEK-Info: {dek.group(1).upper()},{dek.group(2)}\n\n{lines}\n-----END {label}-----\n"
    )
    return _Blob(der, container, label, pem.encode("ascii"), dek.group(1).upper())


def _reject_non_keys(info: _Der, source: str) -> None:
    what = {
        "public": "a public key",
        "certificate": "a certificate (or certificate request)",
        "pkcs12": "a PKCS#12 (.p12/.pfx) bundle",
    }.get(info.kind)
    if what is None:
        return
    fix = (
        "extract the key with `openssl pkcs12 -in bundle.p12 -nocerts -nodes | openssl "
        "pkcs8 -topk8 -v2 aes-256-cbc -out rsa_key.p8` and store that"
        if info.kind == "pkcs12"
        else "Snowflake key-pair authentication needs the private key (-----BEGIN PRIVATE "
        "KEY-----); the public key is what you register with ALTER USER"
    )
    raise PrivateKeyError(f"The value in {source} is {what}, not a private key: {fix}.")


def _finish(
    key: PrivateKeyTypes, blob: _Blob, info: _Der, encrypted: bool, scheme: str | None, source: str
) -> LoadedKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    curve: str | None = None
    if isinstance(key, rsa.RSAPrivateKey):
        key_type = "RSA"
        if key.key_size < MIN_RSA_BITS:
            raise UnsupportedPrivateKeyError(
                f"The RSA private key in {source} has {key.key_size} bits; Snowflake requires "
                f"at least {MIN_RSA_BITS}: generate a new key with `openssl genrsa 2048 | "
                "openssl pkcs8 -topk8 -v2 aes-256-cbc -out rsa_key.p8`."
            )
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        key_type, curve = "EC", key.curve.name
        if curve not in SUPPORTED_CURVES:
            raise UnsupportedPrivateKeyError(
                f"The EC private key in {source} is on curve {curve}, which cannot be used. "
                f"{_SUPPORTED_TYPES}."
            )
    else:
        fallback = type(key).__name__.strip("_").removesuffix("PrivateKey")
        kind = next((name for cls, name in _other_types() if isinstance(key, cls)), fallback)
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} is of type {kind}, which Snowflake cannot use. "
            f"{_SUPPORTED_TYPES}."
        )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
    structure = _STRUCTURES.get(blob.label or "") or _describe(info) or "key"
    logger.debug(
        "private key: %s %s%s %s %d",
        blob.container,
        structure,
        " encrypted" if encrypted else "",
        key_type,
        key.key_size,
    )
    if encrypted and scheme and scheme.startswith(("PBES1", "PKCS#12")):
        logger.debug(
            "private key in %s uses legacy %s; consider: %s", source, scheme, REENCRYPT_COMMAND
        )
    return LoadedKey(
        der_pkcs8=der,
        key_type=key_type,
        key_size=key.key_size,
        curve=curve,
        was_encrypted=encrypted,
        public_key_fingerprint=fingerprint,
    )


def _other_types() -> list[tuple[type, str]]:
    from cryptography.hazmat.primitives.asymmetric import dsa, ed448, ed25519, x448, x25519

    return [
        (dsa.DSAPrivateKey, "DSA"),
        (ed25519.Ed25519PrivateKey, "Ed25519"),
        (ed448.Ed448PrivateKey, "Ed448"),
        (x25519.X25519PrivateKey, "X25519"),
        (x448.X448PrivateKey, "X448"),
    ]


def _describe(info: _Der) -> str:
    return {
        "pkcs8": "PKCS#8",
        "pkcs8-encrypted": "PKCS#8",
        "pkcs1": "PKCS#1",
        "sec1": "SEC1",
        "dsa": "DSA",
    }.get(info.kind, "")


# --- just enough DER to tell key structures apart and read the encryption OIDs ---------

_Tlv = tuple[int, int, int]  # tag, content start, content end


def _tlv(data: bytes, pos: int, end: int) -> _Tlv | None:
    if pos + 2 > end or data[pos] & 0x1F == 0x1F:
        return None
    tag, length, pos = data[pos], data[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        if not 0 < n <= 4 or pos + n > end:
            return None
        length, pos = int.from_bytes(data[pos : pos + n], "big"), pos + n
    return (tag, pos, pos + length) if pos + length <= end else None


def _children(data: bytes, tlv: _Tlv) -> list[_Tlv]:
    out, pos = [], tlv[1]
    while pos < tlv[2]:
        child = _tlv(data, pos, tlv[2])
        if child is None:
            return []
        out.append(child)
        pos = child[2]
    return out


def _is_der(data: bytes) -> bool:
    top = _tlv(data, 0, len(data))
    return top is not None and top[0] == 0x30 and top[2] == len(data)


def _oid(data: bytes, tlv: _Tlv) -> str:
    if tlv[0] != 0x06:
        return ""
    arcs, value = [], 0
    for byte in data[tlv[1] : tlv[2]]:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _inspect(der: bytes) -> _Der:
    top = _tlv(der, 0, len(der))
    if top is None or top[0] != 0x30 or top[2] != len(der):
        return _Der("unknown")
    kids = _children(der, top)
    tags = [k[0] for k in kids]
    first_int = der[kids[0][1] : kids[0][2]] if tags[:1] == [0x02] else None
    if tags[:3] == [0x02, 0x30, 0x04]:
        alg = _children(der, kids[1])
        return _Der("pkcs8", _oid(der, alg[0]) if alg else None)
    if tags == [0x30, 0x04]:
        return _encryption(der, kids[0])
    if tags == [0x30, 0x03]:
        return _Der("public")
    if tags == [0x30, 0x30, 0x03]:
        return _Der("certificate")
    if tags[:2] == [0x02, 0x30] and first_int == b"\x03":
        return _Der("pkcs12")
    if tags[:2] == [0x02, 0x04] and first_int == b"\x01":
        return _Der("sec1")
    if set(tags) == {0x02}:
        if len(tags) == 2:
            return _Der("public")  # PKCS#1 RSAPublicKey: modulus, exponent
        if first_int == b"\x00":
            return _Der("pkcs1" if len(tags) >= 9 else "dsa")
    return _Der("unknown")


def _encryption(der: bytes, alg: _Tlv) -> _Der:
    parts = _children(der, alg)
    oid = _oid(der, parts[0]) if parts else ""
    if oid in _LEGACY_PBE:
        return _Der("pkcs8-encrypted", oid, _LEGACY_PBE[oid])
    if oid != _PBES2 or len(parts) < 2:
        return _Der("pkcs8-encrypted", oid, f"an unknown encryption scheme (OID {oid})")
    kdf_enc = _children(der, parts[1])
    kdf, enc = (_children(der, t) for t in kdf_enc[:2]) if len(kdf_enc) >= 2 else ([], [])
    kdf_oid = _oid(der, kdf[0]) if kdf else ""
    enc_oid = _oid(der, enc[0]) if enc else ""
    prf = "1.2.840.113549.2.7"  # hmacWithSHA1, the PBKDF2 default
    if kdf_oid in _KDFS and len(kdf) > 1:
        params = _children(der, kdf[1])
        if params and params[-1][0] == 0x30 and _KDFS[kdf_oid] == "PBKDF2":
            prf_alg = _children(der, params[-1])
            prf = _oid(der, prf_alg[0]) if prf_alg else ""
    kdf_name = _KDFS.get(kdf_oid, f"KDF {kdf_oid}")
    if kdf_name == "PBKDF2":
        kdf_name += "-" + _PRFS.get(prf, f"PRF {prf}")
    name = f"PBES2 ({kdf_name}, {_CIPHERS.get(enc_oid, f'cipher {enc_oid}')})"
    modern = (
        kdf_oid in _KDFS and enc_oid in _CIPHERS and (_KDFS[kdf_oid] == "scrypt" or prf in _PRFS)
    )
    return _Der("pkcs8-encrypted", oid, name, modern)
