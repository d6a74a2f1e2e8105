"""Tests for gds_snowflake._keys: every stored form of a private key, and every refusal."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from gds_snowflake._errors import (
    PrivateKeyError,
    PrivateKeyPassphraseError,
    UnsupportedPrivateKeyError,
)
from gds_snowflake._keys import REENCRYPT_COMMAND, LoadedKey, load_private_key
from tests.snowflake.conftest import CONNECTOR_MAJOR

SOURCE = "field 'private_key' of secret secret/snowflake/etl"
PASSPHRASE = "Tr0ub4dor&3-kp"  # distinctive, so a leak into a message is unmistakable
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")

Enc = serialization.Encoding
Fmt = serialization.PrivateFormat
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# --- keys, generated once per module -------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """One key per accepted type; RSA 2048 is the slow one, so it is made only once."""
    return {
        "RSA": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "EC-P256": ec.generate_private_key(ec.SECP256R1()),
        "EC-P384": ec.generate_private_key(ec.SECP384R1()),
    }


EXPECTED = {  # key_type, key_size, curve
    "RSA": ("RSA", 2048, None),
    "EC-P256": ("EC", 256, "secp256r1"),
    "EC-P384": ("EC", 384, "secp384r1"),
}


def spki(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(Enc.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: PrivateKeyTypes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(spki(key)).digest()).decode()


def pkcs8_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(Enc.DER, Fmt.PKCS8, serialization.NoEncryption())


def encryption(encrypted: bool) -> serialization.KeySerializationEncryption:
    if encrypted:
        return serialization.BestAvailableEncryption(PASSPHRASE.encode())
    return serialization.NoEncryption()


def pem(key: PrivateKeyTypes, fmt: Fmt, encrypted: bool) -> str:
    return key.private_bytes(Enc.PEM, fmt, encryption(encrypted)).decode()


def der(key: PrivateKeyTypes, fmt: Fmt, encrypted: bool) -> bytes:
    return key.private_bytes(Enc.DER, fmt, encryption(encrypted))


def body_only(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("-----"))


# How a PEM file gets mangled on its way into Vault.
PEM_WRAPPERS: dict[str, Callable[[str], str | bytes]] = {
    "raw": lambda t: t,
    "bytes": lambda t: t.encode(),
    "escaped-newlines": lambda t: t.replace("\n", "\\n"),
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "crlf-escaped": lambda t: t.replace("\n", "\\r\\n"),
    "surrounding-whitespace": lambda t: "\n\t  " + t + "  \n\n",
    "one-line-spaces": lambda t: t.strip().replace("\n", " "),
    "json-quoted": lambda t: '"' + t.replace("\n", "\\n") + '"',
    "base64-of-pem": lambda t: base64.b64encode(t.encode()).decode(),
    "base64-of-pem-bytes": lambda t: base64.b64encode(t.encode()),
}
PEM_FORMS = {  # name: (format, encrypted)
    "pem-pkcs8": (Fmt.PKCS8, False),
    "pem-pkcs8-encrypted": (Fmt.PKCS8, True),
    "pem-traditional": (Fmt.TraditionalOpenSSL, False),  # PKCS#1 for RSA, SEC1 for EC
    "pem-traditional-encrypted": (Fmt.TraditionalOpenSSL, True),  # Proc-Type/DEK-Info
}
DER_FORMS = {
    "der-pkcs8": (Fmt.PKCS8, False),
    "der-pkcs8-encrypted": (Fmt.PKCS8, True),
    "der-traditional": (Fmt.TraditionalOpenSSL, False),
}
DER_WRAPPERS: dict[str, Callable[[bytes], str | bytes]] = {
    "raw-der-bytes": lambda d: d,
    "base64": lambda d: base64.b64encode(d).decode(),
    "base64-bytes": lambda d: base64.b64encode(d),
    "base64-unpadded": lambda d: base64.b64encode(d).decode().rstrip("="),
    "bare-pem-body": lambda d: "\n".join(re.findall(".{1,64}", base64.b64encode(d).decode())),
    "bare-body-escaped": lambda d: "\\n".join(re.findall(".{1,64}", base64.b64encode(d).decode())),
}

CASES = [(k, f, w) for k in EXPECTED for f in PEM_FORMS for w in PEM_WRAPPERS] + [
    (k, f, w) for k in EXPECTED for f in DER_FORMS for w in DER_WRAPPERS
]


def build(keys: dict[str, Key], key_name: str, form: str, wrapper: str) -> str | bytes:
    key = keys[key_name]
    if form in PEM_FORMS:
        return PEM_WRAPPERS[wrapper](pem(key, *PEM_FORMS[form]))
    return DER_WRAPPERS[wrapper](der(key, *DER_FORMS[form]))


# --- leak checks ---------------------------------------------------------------------------


def b64_windows(*materials: str | bytes) -> set[str]:
    """Every 16-character run of base64 in the given key material."""
    out: set[str] = set()
    for material in materials:
        text = material if isinstance(material, str) else ""
        if isinstance(material, bytes):
            try:
                text = material.decode("ascii")
            except UnicodeDecodeError:
                text = base64.b64encode(material).decode()
        for run in re.findall(r"[A-Za-z0-9+/]{16,}", text):
            out.update(run[i : i + 16] for i in range(len(run) - 15))
    return out


def assert_no_material(exc: BaseException, *materials: str | bytes) -> None:
    text = str(exc) + repr(exc)
    assert PASSPHRASE not in text
    leaked = [w for w in b64_windows(*materials) if w in text]
    assert not leaked, f"key material in the message: {leaked[:3]}"
    assert SOURCE in str(exc)


# --- accepted forms ------------------------------------------------------------------------


@pytest.mark.parametrize(("key_name", "form", "wrapper"), CASES)
def test_every_stored_form_loads_to_the_same_key(
    keys: dict[str, Key], key_name: str, form: str, wrapper: str
) -> None:
    """Each key type in each stored form and mangling loads to the same key and fingerprint."""
    key = keys[key_name]
    encrypted = form.endswith("-encrypted")
    loaded = load_private_key(
        build(keys, key_name, form, wrapper), PASSPHRASE if encrypted else None, source=SOURCE
    )
    again = serialization.load_der_private_key(loaded.der_pkcs8, None)
    assert spki(again) == spki(key)
    assert loaded.der_pkcs8 == pkcs8_der(key)
    assert loaded.public_key_fingerprint == fingerprint(key)
    assert (loaded.key_type, loaded.key_size, loaded.curve) == EXPECTED[key_name]
    assert loaded.was_encrypted is encrypted


@pytest.mark.parametrize("passphrase", [PASSPHRASE, PASSPHRASE.encode()], ids=["str", "bytes"])
def test_passphrase_may_be_str_or_bytes(keys: dict[str, Key], passphrase: str | bytes) -> None:
    """The passphrase is accepted as str or as bytes."""
    loaded = load_private_key(pem(keys["RSA"], Fmt.PKCS8, True), passphrase, source=SOURCE)
    assert loaded.public_key_fingerprint == fingerprint(keys["RSA"])


@pytest.mark.parametrize("passphrase", [PASSPHRASE, b"", ""], ids=["given", "empty-bytes", "empty"])
def test_passphrase_for_unencrypted_key_is_ignored(
    keys: dict[str, Key], passphrase: str | bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A passphrase for a key that is not encrypted is ignored with a DEBUG note, not refused."""
    caplog.set_level(logging.DEBUG, logger="gds_snowflake._keys")
    loaded = load_private_key(pem(keys["RSA"], Fmt.PKCS8, False), passphrase, source=SOURCE)
    assert loaded.was_encrypted is False
    assert ("passphrase is ignored" in caplog.text) is bool(passphrase)
    assert PASSPHRASE not in caplog.text


def test_debug_log_names_the_form_and_never_the_material(
    keys: dict[str, Key], caplog: pytest.LogCaptureFixture
) -> None:
    """The DEBUG log says which form was detected and holds no key material or passphrase."""
    caplog.set_level(logging.DEBUG, logger="gds_snowflake._keys")
    material = pem(keys["RSA"], Fmt.PKCS8, True)
    load_private_key(material, PASSPHRASE, source=SOURCE)
    load_private_key(base64.b64encode(der(keys["RSA"], Fmt.TraditionalOpenSSL, False)).decode())
    load_private_key(pem(keys["EC-P256"], Fmt.TraditionalOpenSSL, False))
    assert "private key: PEM PKCS#8 encrypted RSA 2048" in caplog.messages
    assert "private key: base64 DER PKCS#1 RSA 2048" in caplog.messages
    assert "private key: PEM SEC1 EC 256" in caplog.messages
    assert PASSPHRASE not in caplog.text
    assert not [w for w in b64_windows(material, pkcs8_der(keys["RSA"])) if w in caplog.text]


def test_ec_parameters_block_before_the_key_is_skipped(keys: dict[str, Key]) -> None:
    """`openssl ecparam -genkey` output (EC PARAMETERS then EC PRIVATE KEY) loads."""
    params = base64.b64encode(bytes.fromhex("06082a8648ce3d030107")).decode()  # prime256v1
    material = f"-----BEGIN EC PARAMETERS-----\n{params}\n-----END EC PARAMETERS-----\n"
    material += pem(keys["EC-P256"], Fmt.TraditionalOpenSSL, False)
    assert load_private_key(material).curve == "secp256r1"


def test_certificate_next_to_the_key_is_skipped(keys: dict[str, Key]) -> None:
    """A PEM bundle holding a certificate and the private key loads the private key."""
    material = make_cert(keys["RSA"]).public_bytes(Enc.PEM).decode()
    material += pem(keys["RSA"], Fmt.PKCS8, False)
    assert load_private_key(material).public_key_fingerprint == fingerprint(keys["RSA"])


def test_loaded_key_repr_shows_metadata_never_key_bytes(keys: dict[str, Key]) -> None:
    """LoadedKey's repr shows type, size and fingerprint but no key bytes; it is frozen."""
    loaded = load_private_key(pem(keys["RSA"], Fmt.PKCS8, False))
    text = repr(loaded)
    assert "RSA" in text
    assert "2048" in text
    assert loaded.public_key_fingerprint in text
    assert "der_pkcs8" not in text
    assert not [w for w in b64_windows(loaded.der_pkcs8) if w in text]
    assert str(loaded.der_pkcs8[:20]) not in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.key_type = "EC"  # type: ignore[misc]
    assert not hasattr(loaded, "__dict__")
    assert isinstance(loaded, LoadedKey)


@needs_openssl
def test_key_from_openssl_pkcs8_v2_aes256_loads(keys: dict[str, Key], tmp_path: Path) -> None:
    """A key encrypted by `openssl pkcs8 -topk8 -v2 aes-256-cbc` (Snowflake's recipe) loads."""
    src = tmp_path / "rsa.pem"
    src.write_text(pem(keys["RSA"], Fmt.TraditionalOpenSSL, False))
    out = tmp_path / "rsa_key.p8"
    openssl(
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        src,
        "-out",
        out,
        "-passout",
        f"pass:{PASSPHRASE}",
    )
    loaded = load_private_key(out.read_text(), PASSPHRASE, source=SOURCE)
    assert loaded.was_encrypted is True
    assert loaded.public_key_fingerprint == fingerprint(keys["RSA"])


# --- the connector accepts what we produce -------------------------------------------------


JWT_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@pytest.mark.skipif(
    CONNECTOR_MAJOR >= 5,
    reason="connector 5.x signs JWTs in its native core (no AuthByKeyPair); the key-pair "
    "logins in test_double.py check its JWTs against the double for every key type",
)
@pytest.mark.parametrize(
    "curve",
    [None, ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()],
    ids=["RSA", "EC-P256", "EC-P384", "EC-P521"],
)
def test_snowflake_connector_signs_a_jwt_with_der_pkcs8(
    keys: dict[str, Key], curve: ec.EllipticCurve | None
) -> None:
    """snowflake.connector's AuthByKeyPair builds a valid JWT from der_pkcs8, RSA and EC alike."""
    import jwt
    from snowflake.connector.auth import AuthByKeyPair

    key = keys["RSA"] if curve is None else ec.generate_private_key(curve)
    loaded = load_private_key(pem(key, Fmt.PKCS8, True), PASSPHRASE, source=SOURCE)
    auth = AuthByKeyPair(private_key=loaded.der_pkcs8)
    token = auth.prepare(account="xy12345.eu-west-1", user="etl_user")
    algorithm = jwt.get_unverified_header(token)["alg"]
    expected = "RS256" if curve is None else JWT_ALGORITHMS[curve.name]
    assert algorithm == expected
    claims = jwt.decode(token, key.public_key(), algorithms=[algorithm])
    assert claims["iss"] == f"XY12345.ETL_USER.{loaded.public_key_fingerprint}"
    connector_fp = AuthByKeyPair.calculate_public_key_fingerprint(key)  # type: ignore[no-untyped-call]
    assert connector_fp == loaded.public_key_fingerprint


def test_importing_the_module_does_not_import_cryptography() -> None:
    """`import gds_snowflake._keys` stays cheap: cryptography is imported only when loading."""
    code = "import sys, gds_snowflake._keys; sys.exit('cryptography' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


# --- refusals ------------------------------------------------------------------------------

ENCRYPTED_FORMS: dict[str, Callable[[Key], str | bytes]] = {
    "pem-pkcs8": lambda k: pem(k, Fmt.PKCS8, True),
    "pem-legacy": lambda k: pem(k, Fmt.TraditionalOpenSSL, True),
    "der-pkcs8": lambda k: der(k, Fmt.PKCS8, True),
    "base64-der-pkcs8": lambda k: base64.b64encode(der(k, Fmt.PKCS8, True)).decode(),
    "escaped-pem": lambda k: pem(k, Fmt.PKCS8, True).replace("\n", "\\n"),
}


@pytest.mark.parametrize("form", ENCRYPTED_FORMS)
@pytest.mark.parametrize("passphrase", [None, "", b""], ids=["none", "empty", "empty-bytes"])
def test_encrypted_key_without_passphrase_asks_for_one(
    keys: dict[str, Key], form: str, passphrase: str | bytes | None
) -> None:
    """An encrypted key with no (or an empty) passphrase asks for private_key_passphrase."""
    material = ENCRYPTED_FORMS[form](keys["RSA"])
    with pytest.raises(PrivateKeyPassphraseError, match="private_key_passphrase") as info:
        load_private_key(material, passphrase, source=SOURCE)
    assert "no passphrase" in str(info.value)
    assert_no_material(info.value, material, pkcs8_der(keys["RSA"]))


@pytest.mark.parametrize("form", ENCRYPTED_FORMS)
@pytest.mark.parametrize(
    "wrong",
    ["not-the-passphrase", b"not-the-passphrase", PASSPHRASE + "\n"],
    ids=["str", "bytes", "trailing-newline"],
)
def test_wrong_passphrase_is_a_passphrase_error(
    keys: dict[str, Key], form: str, wrong: str | bytes
) -> None:
    """A wrong passphrase (including one with a trailing newline) is a PrivateKeyPassphraseError."""
    material = ENCRYPTED_FORMS[form](keys["EC-P256"])
    with pytest.raises(PrivateKeyPassphraseError, match="wrong") as info:
        load_private_key(material, wrong, source=SOURCE)
    assert "private_key_passphrase" in str(info.value)
    assert "not-the-passphrase" not in str(info.value) + repr(info.value)
    assert_no_material(info.value, material, pkcs8_der(keys["EC-P256"]))


def test_passphrase_of_wrong_type_is_refused(keys: dict[str, Key]) -> None:
    """A passphrase that is neither str nor bytes is refused without echoing it."""
    with pytest.raises(PrivateKeyPassphraseError, match="string or bytes"):
        load_private_key(pem(keys["RSA"], Fmt.PKCS8, True), 12345, source=SOURCE)  # type: ignore[arg-type]


def corrupt_materials(keys: dict[str, Key]) -> dict[str, str | bytes]:
    text = pem(keys["RSA"], Fmt.PKCS8, False)
    lines = text.splitlines()
    der_bytes = pkcs8_der(keys["RSA"])
    return {
        "prose": "this is not a private key!",
        "password-like": "hunter2",
        "base64-of-random-bytes": base64.b64encode(os.urandom(300)).decode(),
        "random-binary": b"\xff\xfe" + os.urandom(200),
        "begin-without-end": "\n".join(lines[: len(lines) // 2]),
        "body-truncated": "\n".join([*lines[:10], lines[-1]]),
        "body-has-bad-characters": text.replace(lines[5], lines[5][:30] + "%$#" + lines[5][33:]),
        "empty-body": "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        "truncated-der": der_bytes[: len(der_bytes) // 2],
        "truncated-base64-der": base64.b64encode(der_bytes[: len(der_bytes) // 2]).decode(),
        "unknown-pem-label": text.replace("PRIVATE KEY", "PGP MESSAGE"),
        "file-path": "/home/etl/.ssh/rsa_key.p8",
        "legacy-header-without-dek-info": pem(keys["RSA"], Fmt.TraditionalOpenSSL, True).replace(
            "DEK-Info", "XXX-Info"
        ),
    }


CORRUPT = [
    "prose",
    "password-like",
    "base64-of-random-bytes",
    "random-binary",
    "begin-without-end",
    "body-truncated",
    "body-has-bad-characters",
    "empty-body",
    "truncated-der",
    "truncated-base64-der",
    "unknown-pem-label",
    "file-path",
    "legacy-header-without-dek-info",
]


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_or_truncated_material_is_a_private_key_error(
    keys: dict[str, Key], name: str
) -> None:
    """Garbage, damaged base64 and truncated keys raise a plain PrivateKeyError."""
    material = corrupt_materials(keys)[name]
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(material, source=SOURCE)
    assert type(info.value) is PrivateKeyError
    assert_no_material(info.value, material, pkcs8_der(keys["RSA"]))


@pytest.mark.parametrize(
    "material",
    [
        None,
        42,
        3.5,
        ["-----BEGIN PRIVATE KEY-----"],
        bytearray(b"x"),
        "",
        b"",
        "  \n\t ",
        "\\n\\n",
        '""',
    ],
    ids=[
        "none",
        "int",
        "float",
        "list",
        "bytearray",
        "empty",
        "empty-bytes",
        "whitespace",
        "escaped-newlines-only",
        "empty-json-string",
    ],
)
def test_non_text_or_empty_material_is_refused(material: object) -> None:
    """Input that is not str/bytes, or is empty, raises PrivateKeyError naming the source."""
    with pytest.raises(PrivateKeyError) as info:
        load_private_key(material, source=SOURCE)  # type: ignore[arg-type]
    assert type(info.value) is PrivateKeyError
    assert SOURCE in str(info.value)


def test_two_private_keys_are_refused(keys: dict[str, Key]) -> None:
    """A value holding two private keys is refused rather than guessed at."""
    material = pem(keys["RSA"], Fmt.PKCS8, False) + pem(keys["EC-P256"], Fmt.PKCS8, False)
    with pytest.raises(PrivateKeyError, match="2 private keys") as info:
        load_private_key(material, source=SOURCE)
    assert_no_material(info.value, material)


def make_cert(key: Key) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etl")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def not_private_materials(keys: dict[str, Key]) -> dict[str, tuple[str | bytes, str]]:
    key = keys["RSA"]
    cert = make_cert(key)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etl")]))
        .sign(key, hashes.SHA256())
    )
    pub = key.public_key()
    spki_pem = pub.public_bytes(Enc.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "certificate-pem": (cert.public_bytes(Enc.PEM).decode(), "certificate"),
        "certificate-der-base64": (
            base64.b64encode(cert.public_bytes(Enc.DER)).decode(),
            "certificate",
        ),
        "certificate-der": (cert.public_bytes(Enc.DER), "certificate"),
        "csr-pem": (csr.public_bytes(Enc.PEM).decode(), "certificate signing request"),
        "public-key-pem": (spki_pem.decode(), "public key"),
        "public-key-escaped": (spki_pem.decode().replace("\n", "\\n"), "public key"),
        "rsa-public-key-pem": (
            pub.public_bytes(Enc.PEM, serialization.PublicFormat.PKCS1).decode(),
            "public key",
        ),
        # what `DESC USER` / ALTER USER ... SET RSA_PUBLIC_KEY holds: the bare SPKI body
        "bare-public-key-body": (base64.b64encode(spki(key)).decode(), "public key"),
        "bare-pkcs1-public-key": (
            base64.b64encode(pub.public_bytes(Enc.DER, serialization.PublicFormat.PKCS1)).decode(),
            "public key",
        ),
        "ssh-public-key": (
            pub.public_bytes(Enc.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
            + " etl@host",
            "SSH public key",
        ),
        "pkcs12-bundle": (
            base64.b64encode(
                pkcs12.serialize_key_and_certificates(
                    b"etl", key, cert, None, serialization.NoEncryption()
                )
            ).decode(),
            "PKCS#12",
        ),
    }


NOT_PRIVATE = [
    "certificate-pem",
    "certificate-der-base64",
    "certificate-der",
    "csr-pem",
    "public-key-pem",
    "public-key-escaped",
    "rsa-public-key-pem",
    "bare-public-key-body",
    "bare-pkcs1-public-key",
    "ssh-public-key",
    "pkcs12-bundle",
]


@pytest.mark.parametrize("name", NOT_PRIVATE)
def test_certificate_or_public_key_is_named_as_such(keys: dict[str, Key], name: str) -> None:
    """A certificate, CSR, public key or PKCS#12 bundle is refused and named, asking for the key."""
    material, what = not_private_materials(keys)[name]
    with pytest.raises(PrivateKeyError, match=re.escape(what)) as info:
        load_private_key(material, source=SOURCE)
    assert type(info.value) is PrivateKeyError
    assert "private key" in str(info.value)
    assert_no_material(info.value, material, pkcs8_der(keys["RSA"]))


@pytest.fixture(scope="module")
def unsupported() -> dict[str, tuple[str | bytes, str]]:
    """Keys Snowflake cannot use, each with the words its error must contain."""

    def as_pem(key: PrivateKeyTypes, fmt: Fmt = Fmt.PKCS8) -> str:
        return key.private_bytes(Enc.PEM, fmt, serialization.NoEncryption()).decode()

    # Weak on purpose: the point is that they are refused.
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    dsa_key = dsa.generate_private_key(key_size=1024)  # noqa: S505
    dsa_der = dsa_key.private_bytes(Enc.DER, Fmt.PKCS8, serialization.NoEncryption())
    return {
        "rsa-1024": (as_pem(small_rsa), "1024 bits"),
        "rsa-1024-encrypted": (pem(small_rsa, Fmt.PKCS8, True), "1024 bits"),
        "dsa-pkcs8": (as_pem(dsa_key), "DSA"),
        "dsa-traditional": (as_pem(dsa_key, Fmt.TraditionalOpenSSL), "DSA"),
        "dsa-base64-der": (base64.b64encode(dsa_der), "DSA"),
        "ed25519": (as_pem(ed25519.Ed25519PrivateKey.generate()), "Ed25519"),
        "ed448": (as_pem(ed448.Ed448PrivateKey.generate()), "Ed448"),
        "x25519": (as_pem(x25519.X25519PrivateKey.generate()), "X25519"),
        "ec-secp256k1": (as_pem(ec.generate_private_key(ec.SECP256K1())), "secp256k1"),
        "openssh-format": (as_pem(small_rsa, Fmt.OpenSSH), "ssh-keygen -p -m PKCS8"),
    }


UNSUPPORTED = [
    "rsa-1024",
    "rsa-1024-encrypted",
    "dsa-pkcs8",
    "dsa-traditional",
    "dsa-base64-der",
    "ed25519",
    "ed448",
    "x25519",
    "ec-secp256k1",
    "openssh-format",
]


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_unusable_key_types_are_unsupported(
    unsupported: dict[str, tuple[str | bytes, str]], name: str
) -> None:
    """DSA, EdDSA, X25519, odd curves, OpenSSH format and RSA under 2048 bits are unsupported."""
    material, what = unsupported[name]
    passphrase = PASSPHRASE if name.endswith("-encrypted") else None
    with pytest.raises(UnsupportedPrivateKeyError, match=re.escape(what)) as info:
        load_private_key(material, passphrase, source=SOURCE)
    if name != "openssh-format":
        assert "RSA" in str(info.value)
        assert "2048" in str(info.value)
    assert_no_material(info.value, material)


# --- legacy (PBES1 / PKCS#12 PBE) and odd encryption --------------------------------------


def der_tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | arc & 0x7F)
        out += bytes(reversed(chunk))
    return der_tlv(0x06, bytes(out))


def test_hand_built_pbes1_key_is_unsupported_and_named_by_oid() -> None:
    """A PBES1 (pbeWithMD2AndDES-CBC) EncryptedPrivateKeyInfo is refused, naming the scheme."""
    params = der_tlv(0x30, der_tlv(0x04, b"saltsalt") + der_tlv(0x02, b"\x08\x00"))
    algorithm = der_tlv(0x30, der_oid("1.2.840.113549.1.5.1") + params)
    ciphertext = os.urandom(1216)
    material = der_tlv(0x30, algorithm + der_tlv(0x04, ciphertext))
    text = base64.b64encode(material).decode()
    with pytest.raises(UnsupportedPrivateKeyError, match="pbeWithMD2AndDES-CBC") as info:
        load_private_key(text, PASSPHRASE, source=SOURCE)
    assert REENCRYPT_COMMAND in str(info.value)
    assert_no_material(info.value, text)


def test_legacy_pem_with_unknown_cipher_is_unsupported() -> None:
    """A Proc-Type/DEK-Info PEM with a cipher cryptography lacks is refused with the fix."""
    body = "\n".join(re.findall(".{1,64}", base64.b64encode(os.urandom(1200)).decode()))
    material = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        "DEK-Info: CAMELLIA-256-CBC,00112233445566778899AABBCCDDEEFF\n\n"
        f"{body}\n-----END RSA PRIVATE KEY-----\n"
    )
    with pytest.raises(UnsupportedPrivateKeyError, match="CAMELLIA-256-CBC") as info:
        load_private_key(material, PASSPHRASE, source=SOURCE)
    assert REENCRYPT_COMMAND in str(info.value)
    assert "00112233445566778899" not in str(info.value)
    assert_no_material(info.value, material)


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, check=True, timeout=60
    )


LEGACY_SCHEMES = [
    "PBE-SHA1-3DES",
    "PBE-SHA1-2DES",
    "PBE-MD5-DES",
    "PBE-SHA1-DES",
    "PBE-SHA1-RC2-40",
    "PBE-SHA1-RC2-64",
    "PBE-SHA1-RC2-128",
    "PBE-SHA1-RC4-128",
    "PBE-SHA1-RC4-40",
    "PBE-MD5-RC2-64",
]


@pytest.fixture(scope="module")
def legacy_keys(keys: dict[str, Key], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The RSA key encrypted with each legacy scheme the local openssl can still write."""
    if OPENSSL is None:
        pytest.skip("the openssl CLI is not installed")
    folder = tmp_path_factory.mktemp("legacy")
    src = folder / "rsa.pem"
    src.write_text(pem(keys["RSA"], Fmt.TraditionalOpenSSL, False))
    made: dict[str, Path] = {}
    for scheme in LEGACY_SCHEMES:
        out = folder / f"{scheme}.p8"
        for providers in ([], ["-provider", "legacy", "-provider", "default"]):
            try:
                openssl(
                    "pkcs8",
                    "-topk8",
                    "-v1",
                    scheme,
                    *providers,
                    "-in",
                    src,
                    "-out",
                    out,
                    "-passout",
                    f"pass:{PASSPHRASE}",
                )
            except subprocess.CalledProcessError:
                continue
            if out.stat().st_size:
                made[scheme] = out
                break
    return made


def cryptography_loads(path: Path) -> bool:
    try:
        serialization.load_pem_private_key(path.read_bytes(), PASSPHRASE.encode())
    except ValueError:
        return False
    return True


@needs_openssl
@pytest.mark.parametrize("scheme", LEGACY_SCHEMES)
def test_legacy_encrypted_pkcs8_loads_or_explains_how_to_reencrypt(
    keys: dict[str, Key], legacy_keys: dict[str, Path], scheme: str
) -> None:
    """A legacy-encrypted key loads when cryptography can decrypt it, else names the openssl fix."""
    if scheme not in legacy_keys:
        pytest.skip(f"this openssl cannot write {scheme} (legacy provider missing)")
    material = legacy_keys[scheme].read_text()
    if cryptography_loads(legacy_keys[scheme]):
        loaded = load_private_key(material, PASSPHRASE, source=SOURCE)
        assert loaded.was_encrypted is True
        assert loaded.public_key_fingerprint == fingerprint(keys["RSA"])
        with pytest.raises(PrivateKeyPassphraseError) as wrong:
            load_private_key(material, "not-the-passphrase", source=SOURCE)
        assert_no_material(wrong.value, material, pkcs8_der(keys["RSA"]))
    else:
        with pytest.raises(UnsupportedPrivateKeyError, match=re.escape(REENCRYPT_COMMAND)) as info:
            load_private_key(material, PASSPHRASE, source=SOURCE)
        assert "PBES1" in str(info.value) or "PKCS#12" in str(info.value)
        assert_no_material(info.value, material, pkcs8_der(keys["RSA"]))


@needs_openssl
def test_suggested_reencrypt_command_produces_a_loadable_key(
    keys: dict[str, Key], legacy_keys: dict[str, Path], tmp_path: Path
) -> None:
    """Running the suggested openssl command on an unloadable legacy key fixes it."""
    stuck = [path for path in legacy_keys.values() if not cryptography_loads(path)]
    if not stuck:
        pytest.skip("cryptography decrypts every legacy scheme this openssl can write")
    old = tmp_path / "old.p8"
    old.write_bytes(stuck[0].read_bytes())
    command = REENCRYPT_COMMAND.split()
    assert command[:2] == ["openssl", "pkcs8"]
    subprocess.run(
        [
            str(OPENSSL),
            *command[1:],
            "-provider",
            "legacy",
            "-provider",
            "default",
            "-passin",
            f"pass:{PASSPHRASE}",
            "-passout",
            f"pass:{PASSPHRASE}",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    loaded = load_private_key((tmp_path / "new.p8").read_text(), PASSPHRASE, source=SOURCE)
    assert loaded.public_key_fingerprint == fingerprint(keys["RSA"])
