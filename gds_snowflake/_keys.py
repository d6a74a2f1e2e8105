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

The work is split three ways: :mod:`gds_snowflake._key_forms` unwraps the stored form
into DER, :mod:`gds_snowflake._der` reads its structure (which key, encrypted with what),
and this module loads it with ``cryptography`` and checks that Snowflake can use it.

``cryptography`` is imported inside :func:`load_private_key`, so importing this module
costs only the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gds_snowflake._der import KEY_OIDS, DerInfo, describe, inspect_der
from gds_snowflake._errors import (
    PrivateKeyError,
    PrivateKeyPassphraseError,
    UnsupportedPrivateKeyError,
)
from gds_snowflake._key_forms import MIN_RSA_BITS, STRUCTURES, SUPPORTED_TYPES, Blob, decode
from gds_snowflake._secret_holder import SecretHolder

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["REENCRYPT_COMMAND", "LoadedKey", "load_private_key"]

logger = logging.getLogger(__name__)

# Curves snowflake-connector-python signs with (ES256 / ES384 / ES512).
SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
REENCRYPT_COMMAND = "openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.p8 -out new.p8"
_REENCRYPT_ADVICE = (
    f"re-encrypt it with PBES2 using `{REENCRYPT_COMMAND}` (OpenSSL 3 may need "
    "`-provider legacy -provider default` to read the old key) and store new.p8 instead"
)
_PEM_CIPHERS = {"AES-128-CBC", "AES-256-CBC", "DES-EDE3-CBC"}  # DEK-Info cryptography reads


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedKey(SecretHolder):
    """A private key ready for ``snowflake.connector.connect(private_key=der_pkcs8)``.

    It holds the decrypted key, so it refuses to be pickled.

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
    blob = decode(material, source)
    info = DerInfo("pkcs8-encrypted") if blob.legacy_pem else inspect_der(blob.der)
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
                f"installation cannot decrypt: {_REENCRYPT_ADVICE}.",
                cause=exc,
            ) from None
        what = KEY_OIDS.get(info.oid or "", "an unknown key type")
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} uses {what}, which cannot be loaded. {SUPPORTED_TYPES}.",
            cause=exc,
        ) from None
    except (ValueError, TypeError) as exc:
        if not encrypted:
            structure = describe(info)
            parsed_as = f" as {structure}" if structure else ""
            raise PrivateKeyError(
                f"The private key in {source} cannot be parsed{parsed_as}: it is corrupt, "
                "truncated or mis-pasted. Store the whole key again, from -----BEGIN PRIVATE "
                "KEY----- to -----END PRIVATE KEY-----.",
                cause=exc,
            ) from None
        # cryptography says "Unknown key encryption algorithm: <oid>" (PKCS#8) or "Key
        # encrypted with unknown cipher" (PEM) for schemes it lacks; its generic message
        # for undecodable output mentions "unsupported", so only "unknown" counts here.
        if not modern and "unknown" in str(exc).lower():
            raise UnsupportedPrivateKeyError(
                f"The private key in {source} is encrypted with {scheme}, which this "
                f"installation cannot decrypt: {_REENCRYPT_ADVICE}.",
                cause=exc,
            ) from None
        hint = "" if modern else f" If the passphrase is right, {_REENCRYPT_ADVICE}."
        raise PrivateKeyPassphraseError(
            f"The passphrase for the encrypted private key in {source} is wrong (or the "
            "key is damaged): check field `private_key_passphrase` of the secret, "
            f"including stray spaces or a trailing newline.{hint}",
            cause=exc,
        ) from None
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


def _reject_non_keys(info: DerInfo, source: str) -> None:
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
    key: PrivateKeyTypes,
    blob: Blob,
    info: DerInfo,
    encrypted: bool,
    scheme: str | None,
    source: str,
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
                f"{SUPPORTED_TYPES}."
            )
    else:
        fallback = type(key).__name__.strip("_").removesuffix("PrivateKey")
        kind = next((name for cls, name in _other_types() if isinstance(key, cls)), fallback)
        raise UnsupportedPrivateKeyError(
            f"The private key in {source} is of type {kind}, which Snowflake cannot use. "
            f"{SUPPORTED_TYPES}."
        )
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
    structure = STRUCTURES.get(blob.label or "") or describe(info) or "key"
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
