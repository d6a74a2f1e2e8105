"""Just enough DER to tell private-key structures apart and read the encryption OIDs.

:func:`inspect_der` says what a DER blob holds: PKCS#8 (and its key algorithm), an
encrypted PKCS#8 ``EncryptedPrivateKeyInfo`` (its scheme, and whether it is PBES2 with
parts ``cryptography`` is known to decrypt), PKCS#1, SEC1, DSA, or something that is not
a private key (a public key, a certificate, a PKCS#12 bundle). :mod:`gds_snowflake._keys`
uses it to read whether a key is encrypted, and with which scheme, from the structure
rather than from error text. Standard library only; nothing here decrypts or checks a key.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["KEY_OIDS", "DerInfo", "describe", "inspect_der", "is_der"]

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
KEY_OIDS = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.10045.2.1": "EC",
    "1.2.840.10040.4.1": "DSA",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
}


class DerInfo(NamedTuple):
    kind: str  # pkcs8, pkcs8-encrypted, pkcs1, sec1, dsa, public, certificate, pkcs12, unknown
    oid: str | None = None  # key algorithm (pkcs8) or encryption algorithm (encrypted)
    scheme: str | None = None  # human name of the encryption scheme
    modern: bool = False  # PBES2 with parts cryptography is known to decrypt


def describe(info: DerInfo) -> str:
    return {
        "pkcs8": "PKCS#8",
        "pkcs8-encrypted": "PKCS#8",
        "pkcs1": "PKCS#1",
        "sec1": "SEC1",
        "dsa": "DSA",
    }.get(info.kind, "")


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


def is_der(data: bytes) -> bool:
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


def inspect_der(der: bytes) -> DerInfo:
    top = _tlv(der, 0, len(der))
    if top is None or top[0] != 0x30 or top[2] != len(der):
        return DerInfo("unknown")
    kids = _children(der, top)
    tags = [k[0] for k in kids]
    first_int = der[kids[0][1] : kids[0][2]] if tags[:1] == [0x02] else None
    if tags[:3] == [0x02, 0x30, 0x04]:
        alg = _children(der, kids[1])
        return DerInfo("pkcs8", _oid(der, alg[0]) if alg else None)
    if tags == [0x30, 0x04]:
        return _encryption(der, kids[0])
    if tags == [0x30, 0x03]:
        return DerInfo("public")
    if tags == [0x30, 0x30, 0x03]:
        return DerInfo("certificate")
    if tags[:2] == [0x02, 0x30] and first_int == b"\x03":
        return DerInfo("pkcs12")
    if tags[:2] == [0x02, 0x04] and first_int == b"\x01":
        return DerInfo("sec1")
    if set(tags) == {0x02}:
        if len(tags) == 2:
            return DerInfo("public")  # PKCS#1 RSAPublicKey: modulus, exponent
        if first_int == b"\x00":
            return DerInfo("pkcs1" if len(tags) >= 9 else "dsa")
    return DerInfo("unknown")


def _encryption(der: bytes, alg: _Tlv) -> DerInfo:
    parts = _children(der, alg)
    oid = _oid(der, parts[0]) if parts else ""
    if oid in _LEGACY_PBE:
        return DerInfo("pkcs8-encrypted", oid, _LEGACY_PBE[oid])
    if oid != _PBES2 or len(parts) < 2:
        return DerInfo("pkcs8-encrypted", oid, f"an unknown encryption scheme (OID {oid})")
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
    return DerInfo("pkcs8-encrypted", oid, name, modern)
