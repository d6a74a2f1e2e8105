"""What the client trusts: a CA file, a CA directory, the default CAs, or (loudly) nothing.

``requests`` can only use a CA directory that was prepared with ``c_rehash``; Vault's own
CLI reads every PEM file in VAULT_CAPATH. To behave like the CLI, a directory is turned
into one bundle file (0600, in the temporary directory) that lives as long as the client
and is removed by the process that wrote it, never by a forked child.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from gds_vault._env import outside_stacklevel
from gds_vault._errors import VaultConfigError

logger = logging.getLogger(__name__)


class VaultInsecureWarning(UserWarning):
    """TLS verification of the Vault server is switched off."""


# Shown every time, like urllib3's security warnings: skipping verification is never routine.
warnings.simplefilter("always", VaultInsecureWarning, append=True)

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class TrustStore:
    """Turns a ``verify`` setting into what requests accepts, preparing directories."""

    def __init__(self, verify: bool | str, *, host: str) -> None:
        self._bundle: str | None = None
        self._bundle_pid = 0  # the process that wrote the bundle: the only one to remove it
        if verify is False:
            message = (
                "TLS verification of the Vault server is OFF (VAULT_SKIP_VERIFY / "
                "verify=False): anyone on the network path can read your secrets. Set "
                "VAULT_CACERT to Vault's CA certificate instead."
            )
            logger.warning(message)
            warnings.warn(message, VaultInsecureWarning, stacklevel=outside_stacklevel())
            silence_insecure_request_warnings(host)
            self.requests_verify: bool | str = False
            return
        if verify is True:
            self.requests_verify = True
            return
        path = Path(verify)
        if path.is_dir():
            self.requests_verify = self._bundle = _bundle_directory(path)
            self._bundle_pid = os.getpid()
        elif path.is_file():
            _check_ca_file(path)
            self.requests_verify = str(path)
        else:
            raise VaultConfigError(
                f"The CA certificate path {verify!r} does not exist; check VAULT_CACERT or "
                "VAULT_CAPATH."
            )

    def close(self) -> None:
        """Remove the bundle made from a CA directory, in the process that made it only.

        A forked child shares the file with its parent; its copy of the client closing (or
        being collected at the child's exit) must not pull it from under the parent.
        """
        if self._bundle is not None and self._bundle_pid == os.getpid():
            with contextlib.suppress(OSError):  # already gone: nothing to clean
                os.unlink(self._bundle)
        self._bundle = None

    def __del__(self) -> None:
        self.close()


def warn_if_plain_http(addr: str) -> None:
    """Warn (VaultInsecureWarning) when ``addr`` is plain http:// to another machine.

    Over plain HTTP the token, the secret_id and every secret cross the network in clear.
    http:// to this machine (a dev server, a Vault Agent listening on loopback) is normal
    and stays quiet. A deliberate setup (a test network) silences it with a warnings filter
    on the message's start: ``warnings.filterwarnings("ignore", message="Vault at http://",
    category=gds_vault.VaultInsecureWarning)``, or ``PYTHONWARNINGS`` the same way.
    """
    parts = urlsplit(addr)
    if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return
    message = (
        f"Vault at {addr} is reached over plain HTTP: the token and every secret cross the "
        f"network unencrypted. Use https://{parts.netloc} (VAULT_ADDR). For a deliberate "
        "test setup, silence this with warnings.filterwarnings('ignore', message='Vault at "
        "http://', category=gds_vault.VaultInsecureWarning)."
    )
    warnings.warn(message, VaultInsecureWarning, stacklevel=outside_stacklevel())


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: only the resolver knows, and it is not asked
        return False


def silence_insecure_request_warnings(host: str) -> None:
    """We warned once per client; urllib3 would warn on every request to this host.

    Called when the client is built and again before each unverified request: a filter
    added inside ``warnings.catch_warnings()`` (pytest.warns, or code silencing our own
    warning) is dropped when that block ends. It is re-added only when missing, since every
    change to the filters resets Python's once-per-location warning registries.
    """
    from urllib3.exceptions import InsecureRequestWarning  # rare path

    message = f"Unverified HTTPS request is being made to host '{re.escape(host)}'"
    item = ("ignore", re.compile(message, re.I), InsecureRequestWarning, None, 0)
    if item not in warnings.filters:
        warnings.filterwarnings("ignore", message=message, category=InsecureRequestWarning)


def _check_ca_file(path: Path) -> None:
    """Load the CA file as the TLS layer will, so that a file holding no certificate is a
    configuration error naming the file now, not a TLS failure that says to set the very
    variable that is set.

    Raises:
        VaultConfigError: The file cannot serve as a CA file; says what it holds instead.
    """
    import ssl  # only when a CA file is configured

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
        return
    except ssl.SSLError as exc:
        reason = exc.reason or type(exc).__name__
    except OSError as exc:
        raise VaultConfigError(
            f"The CA file {str(path)!r} cannot be read ({exc.strerror or exc}); check "
            "VAULT_CACERT (or --ca-cert, verify=) and the file's permissions."
        ) from None
    try:
        head = path.read_bytes()[: 1 << 16]
    except OSError:
        head = b""
    where = f"The CA file {str(path)!r} (VAULT_CACERT, --ca-cert or verify=)"
    if not head.strip():
        what = "is empty"
    elif head[:1] == b"\x30":  # an ASN.1 SEQUENCE: a DER (binary) certificate
        what = (
            "is DER (binary), and only PEM is read; convert it with `openssl x509 -inform der "
            f"-in {path} -out vault-ca.pem` and use vault-ca.pem"
        )
    elif b"PRIVATE KEY-----" in head:
        what = "holds a private key, not a certificate"
    elif b"-----BEGIN CERTIFICATE-----" in head:
        what = f"holds a damaged certificate ({reason})"
    else:
        what = "holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)"
    raise VaultConfigError(
        f"{where} {what}. It must be the PEM file of the CA certificate that signed "
        "Vault's certificate (`vault-ca.pem`, `ca.crt`; -----BEGIN CERTIFICATE-----)."
    )


def _bundle_directory(directory: Path) -> str:
    certificates: list[str] = []
    for entry in sorted(directory.iterdir()):
        if not entry.is_file():
            continue
        try:
            text = entry.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        certificates.extend(_PEM_CERT.findall(text))
    if not certificates:
        raise VaultConfigError(
            f"No PEM certificates found in the CA directory {str(directory)!r}; check VAULT_CAPATH."
        )
    handle, name = tempfile.mkstemp(prefix="gds-vault-ca-", suffix=".pem")
    with os.fdopen(handle, "w", encoding="utf-8") as bundle:
        bundle.write("\n".join(certificates) + "\n")
    return name
