"""README's "For the Vault administrator": its commands, run as written, do what it says.

Every ``sh`` block of the section runs, in order, in one bash (``set -euo pipefail``)
against a fresh OpenBao dev server as its root, with ``vault`` being OpenBao's ``bao``
(same arguments) and the real ``openssl``. Then the result is checked from the outside:
the key in Vault is the one whose public half and fingerprint the recipe printed, the
policies allow exactly the reads they should, the AppRole's role_id and secret_id (plain
and response-wrapped) log in as the job would, and the job logs in to the Snowflake
double with the key, once the public half is registered as ALTER USER would.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gds_snowflake import get_snowflake_connection, load_private_key
from gds_vault import AppRoleAuth, TokenAuth, VaultClient, VaultPermissionError
from gds_vault.testing import OpenBaoServer, find_bao, register_written_secret

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the recipe uses openssl"),
]

ROOT = Path(__file__).resolve().parent.parent
PAT = "pat-secret-for-the-readme-recipe-0001"  # what Snowflake's ALTER USER ... ADD PAT returns


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## For the Vault administrator\n", 1)[1].split("\n## ", 1)[0]


def _blocks(fence: str) -> list[str]:
    return re.findall(rf"```{fence}\n(.+?)\n```", _section(), re.S)


class Recipe:
    """The recipe after it ran: its server, its directory and what it printed."""

    def __init__(self, server: OpenBaoServer, workdir: Path, home: Path, output: str) -> None:
        self.server, self.workdir, self.home, self.output = server, workdir, home, output

    def file(self, name: str) -> str:
        return (self.workdir / name).read_text(encoding="utf-8").strip()

    def client(self, auth: object) -> VaultClient:
        return VaultClient(self.server.addr, auth=auth, cache_ttl=0)  # type: ignore[arg-type]

    def root(self) -> VaultClient:
        return self.client(TokenAuth(self.server.root_token))

    def approle(self) -> AppRoleAuth:
        secret_id = (self.home / ".etl" / "vault-secret-id").read_text().strip()
        register_written_secret(secret_id)
        return AppRoleAuth(self.file("role_id"), secret_id)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recipe]:
    """Run the section's sh blocks once, in order, against a fresh OpenBao server."""
    workdir = tmp_path_factory.mktemp("admin")
    home = tmp_path_factory.mktemp("admin-home")
    bin_dir = tmp_path_factory.mktemp("admin-bin")
    (bin_dir / "vault").symlink_to(find_bao())  # the recipe says vault; bao is the same CLI
    (workdir / "pat.txt").write_text(PAT)  # saved from Snowflake's answer, as the SQL says
    register_written_secret(PAT)
    script = "set -euo pipefail\n" + "\n".join(_blocks("sh")) + "\n"
    with OpenBaoServer() as server:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("VAULT_", "BAO_", "HVAULT_", "GDS_"))
        }
        environ.update(
            PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), environ["PATH"]]),
            HOME=str(home),
            VAULT_ADDR=server.addr,
            VAULT_TOKEN=server.root_token,
        )
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=workdir,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        yield Recipe(server, workdir, home, result.stdout)


def test_the_section_has_the_promised_commands():
    """Key generation, kv put with @file, policies for v2 and v1, AppRole, wrapping, PAT."""
    commands = "\n".join(_blocks("sh"))
    for expected in (
        "openssl genrsa 2048 | openssl pkcs8 -topk8",
        "private_key=@rsa_key.p8",
        'path "secret/data/snowflake/etl"',
        'path "kv1/snowflake/etl"',
        "vault write auth/approle/role/snowflake-etl token_policies=snowflake-etl",
        "-field=role_id",
        "-wrap-ttl=10m",
        "VAULT_SECRET_ID_WRAPPED=true",
        "token=@pat.txt",
    ):
        assert expected in commands, expected
    assert "ALTER USER ETL SET RSA_PUBLIC_KEY=" in "\n".join(_blocks("sql"))


def test_the_key_in_vault_is_the_one_the_recipe_printed(recipe):
    """The stored key (encrypted, with its passphrase) loads, and its public half is the
    printed RSA_PUBLIC_KEY value with the printed fingerprint; local copies are gone."""
    public_pem = recipe.file("rsa_key.pub").encode()
    public = serialization.load_pem_public_key(public_pem)
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    printed = recipe.output.splitlines()
    assert base64.b64encode(der).decode() in printed  # the RSA_PUBLIC_KEY line
    fingerprint = base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert fingerprint in printed  # DESC USER's RSA_PUBLIC_KEY_FP, after "SHA256:"
    with recipe.root() as client:
        secret = client.get_secret("secret/snowflake/etl")
    assert secret["account"] == "myorg-myaccount" and secret["user"] == "ETL"
    key = load_private_key(secret["private_key"], secret["private_key_passphrase"])
    assert key.was_encrypted
    assert key.public_key_fingerprint == f"SHA256:{fingerprint}"
    for gone in ("rsa_key.p8", "passphrase.txt", "secret_id", "pat.txt"):
        assert not (recipe.workdir / gone).exists(), gone


def test_the_v1_secret_and_its_policy(recipe):
    """The KV v1 secret was written, and the v1 policy (no data/) lets a token read it."""
    token = recipe.server.create_token(policies=["snowflake-etl-v1"])
    with recipe.client(TokenAuth(token)) as client:
        assert client.get_secret("kv1/snowflake/etl")["user"] == "ETL"
        with pytest.raises(VaultPermissionError):
            client.get_secret("secret/snowflake/etl")


def test_the_approle_reads_its_secret_and_nothing_else(recipe):
    """role_id + the secret_id file log in as the job; the policy allows that one secret."""
    with recipe.client(recipe.approle()) as client:
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        with pytest.raises(VaultPermissionError):
            client.get_secret("secret/snowflake/etl-pat")
    file_mode = (recipe.home / ".etl" / "vault-secret-id").stat().st_mode & 0o777
    assert file_mode == 0o600


def test_the_job_checks_worked_as_printed(recipe):
    """`gds-vault get` as the job (masked) and the wrapped secret_id's `gds-vault login`
    both succeeded inside the recipe."""
    assert re.search(r"^private_key\s+\*{8}$", recipe.output, re.M)
    assert "Logged in to " in recipe.output and " with approle at auth/approle." in recipe.output


def test_the_pat_layout(recipe, snowflake_double):
    """The PAT secret holds `token` (and account, user), readable under its own policy, and
    the job logs in with it once Snowflake knows the token (ALTER USER ... ADD PAT)."""
    token = recipe.server.create_token(policies=["snowflake-etl-pat"])
    with recipe.client(TokenAuth(token)) as client:
        assert client.get_secret("secret/snowflake/etl-pat") == {
            "account": "myorg-myaccount", "user": "ETL", "token": PAT,
        }
        user = f"ETL_PAT_{os.getpid()}"  # the session's double is shared: a name of its own
        snowflake_double.register_user(user)
        snowflake_double.add_pat(user, "etl_job", token=PAT)
        kwargs = snowflake_double.connect_kwargs()  # account= too: the double serves one
        with get_snowflake_connection(
            "secret/snowflake/etl-pat", vault_client=client, user=user, **kwargs
        ) as conn:
            assert conn.cursor().execute("select 1").fetchone() == (1,)
        assert snowflake_double.login_count(user) == 1


def test_the_job_logs_in_to_snowflake_with_the_recipes_key(recipe):
    """With the public key registered (ALTER USER ... SET RSA_PUBLIC_KEY), the AppRole's
    job connects: the whole recipe works end to end."""
    from gds_snowflake.testing import SnowflakeDouble

    with SnowflakeDouble() as snowflake, recipe.client(recipe.approle()) as client:
        snowflake.register_user("ETL", public_key=recipe.file("rsa_key.pub"))
        kwargs = snowflake.connect_kwargs()  # account= too: the double serves one account
        with get_snowflake_connection("secret/snowflake/etl", vault_client=client, **kwargs) as conn:
            assert conn.cursor().execute("select 1").fetchone() == (1,)
