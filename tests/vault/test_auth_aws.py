"""AWS IAM auth: botocore signs, moto's STS verifies the signature, a stand-in plays Vault.

See tests/vault/aws_standin.py for what each double does and does not prove. Everything
is on loopback: moto's server is the STS endpoint the stand-in calls, botocore's
instance-metadata lookup is disabled (tests/conftest.py), and the signed URL
(https://sts.amazonaws.com/) is only a name inside the signature, never dialled.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from gds_vault import AWSIAMAuth, RetryPolicy, VaultAuthError, VaultClient, VaultConfigError
from tests.vault.aws_standin import AwsLoginStandIn, MotoSTS
from tests.vault.test_fork import _in_child

FAST = RetryPolicy(attempts=2, initial_wait=0.01, jitter=0.0)
SERVER_ID = "vault.example.com"


@pytest.fixture(scope="module")
def sts() -> Iterator[dict]:
    """moto's STS with IAM users etl and other (access keys) and a role app-role."""
    server = MotoSTS(setup_calls=7)  # the IAM calls below; every later request is checked
    try:
        iam = server.client("iam")
        keys = {}
        for name in ("etl", "other"):
            iam.create_user(UserName=name)
            keys[name] = iam.create_access_key(UserName=name)["AccessKey"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
        }
        role = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=json.dumps(trust))
        may_assume = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="etl", PolicyName="assume", PolicyDocument=json.dumps(may_assume))
        # Temporary credentials, as ECS, Lambda or MWAA hand out. Made here, not in a test:
        # botocore logs the answer (keys included) at DEBUG, which the tests' secret
        # hygiene check would rightly flag as a leak in the test that did it.
        etl = keys["etl"]
        assumed = server.client("sts", etl["AccessKeyId"], etl["SecretAccessKey"]).assume_role(
            RoleArn=role["Role"]["Arn"], RoleSessionName="task-1"
        )["Credentials"]
        from tests.reliability.hygiene import register

        for key in keys.values():
            register(key["SecretAccessKey"])
        register(assumed["SecretAccessKey"], assumed["SessionToken"])
        yield {
            "server": server,
            "keys": keys,
            "assumed": assumed,
            "account": role["Role"]["Arn"].split(":")[4],
        }
    finally:
        server.stop()


@pytest.fixture
def standin(vault, sts, httpserver) -> AwsLoginStandIn:
    """Vault's aws login (stand-in) in front of the real OpenBao, roles bound to etl."""
    account = sts["account"]
    fake = AwsLoginStandIn(openbao=vault.server, sts_endpoint=sts["server"].url)
    fake.add_role("etl", f"arn:aws:iam::{account}:user/etl", ["reader"], ttl="1h")
    fake.add_role("short", f"arn:aws:iam::{account}:user/etl", ["reader"], ttl="3s", explicit_max_ttl="4s")
    fake.add_role("app", f"arn:aws:iam::{account}:role/app-role", ["reader"], ttl="1h")
    import re

    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake)
    fake.addr = httpserver.url_for("").rstrip("/")  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def aws_env(sts, monkeypatch):
    """The etl user's access key in the standard AWS variables (the first link of the chain)."""

    def use(name: str = "etl", secret: str | None = None, token: str | None = None) -> None:
        key = sts["keys"][name]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret or key["SecretAccessKey"])
        if token:
            monkeypatch.setenv("AWS_SESSION_TOKEN", token)

    return use


def client_for(standin: AwsLoginStandIn, **variables: str) -> VaultClient:
    environ = {"VAULT_ADDR": standin.addr, "VAULT_AUTH_METHOD": "aws", **variables}  # type: ignore[attr-defined]
    return VaultClient.from_env(environ, retry=FAST, cache_ttl=0)


def test_env_credentials_log_in_and_read(standin, sts, aws_env):
    """Credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY sign a GetCallerIdentity that
    moto accepts; the token minted for role etl reads from OpenBao."""
    aws_env()
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        status = client.token_status()
    assert standin.logins == [f"arn:aws:iam::{sts['account']}:user/etl"]
    assert status.method == "aws" and status.mount == "aws"
    assert status.source == "role 'etl' on auth/aws, AWS credentials from botocore's chain (found: env)"


def test_shared_credentials_file_and_profile(standin, sts, monkeypatch, tmp_path):
    """AWS_PROFILE picks a profile of the shared credentials file (botocore's chain)."""
    key = sts["keys"]["etl"]
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[batch]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "batch")
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        assert "shared-credentials-file" in client.auth.source


def test_temporary_credentials_of_an_assumed_role(standin, sts, monkeypatch):
    """Temporary credentials (with a session token, as on ECS, Lambda or MWAA) sign too: the
    assumed role's ARN matches the Vault role bound to the IAM role."""
    assumed = sts["assumed"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", assumed["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", assumed["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", assumed["SessionToken"])
    with client_for(standin, VAULT_AWS_ROLE="app") as client:
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    assert standin.logins[-1].endswith(":assumed-role/app-role/task-1")


def test_server_id_header_is_sent_and_signed(standin, aws_env):
    """With VAULT_AWS_IAM_SERVER_ID the header is sent and signed; a Vault that requires one
    refuses a login without it, or with another value, saying which setting to check."""
    aws_env()
    standin.server_id = SERVER_ID
    with client_for(standin, VAULT_AWS_ROLE="etl", VAULT_AWS_IAM_SERVER_ID=SERVER_ID) as client:
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
    for variables in ({}, {"VAULT_AWS_IAM_SERVER_ID": "other.example.com"}):
        with client_for(standin, VAULT_AWS_ROLE="etl", **variables) as client:
            with pytest.raises(VaultAuthError, match="X-Vault-AWS-IAM-Server-ID") as info:
                client.login()
        assert "VAULT_AWS_IAM_SERVER_ID" in str(info.value)


def test_changing_a_signed_header_breaks_the_signature(sts, aws_env):
    """The request as signed is accepted by moto's STS; with the server ID header changed
    afterwards it is refused: the signature covers the header (checked by STS, not by us)."""
    aws_env()
    data = AWSIAMAuth("etl", server_id=SERVER_ID).login_data()
    headers = {k: v[0] for k, v in json.loads(base64.b64decode(data["iam_request_headers"])).items()}
    body = base64.b64decode(data["iam_request_body"])
    assert base64.b64decode(data["iam_request_url"]) == b"https://sts.amazonaws.com/"

    def replay(**changed: str) -> requests.Response:
        sent = {**headers, "Host": "sts.amazonaws.com", **changed}
        return requests.post(sts["server"].url + "/", data=body, headers=sent, timeout=10)

    assert replay().status_code == 200
    tampered = replay(**{"X-Vault-AWS-IAM-Server-ID": "attacker.example.com"})
    assert tampered.status_code == 403 and "SignatureDoesNotMatch" in tampered.text


def test_wrong_secret_key_is_refused_by_sts_and_named(standin, aws_env):
    """A wrong secret key: STS refuses the signature, and the VaultAuthError passes on what
    Vault said and what to check, without the key."""
    wrong = "wrongWRONGwrongWRONGwrongWRONGwrong0000"
    aws_env(secret=wrong)
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        with pytest.raises(VaultAuthError) as info:
            client.login()
    message = str(info.value)
    assert "SignatureDoesNotMatch" in message and "AWS credentials are current" in message
    assert wrong not in message and standin.logins == []


def test_principal_not_bound_to_the_role(standin, aws_env):
    """Another IAM user than the role binds is refused, naming VAULT_AWS_ROLE."""
    aws_env("other")
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        with pytest.raises(VaultAuthError, match="does not belong to the role") as info:
            client.login()
    assert "VAULT_AWS_ROLE" in str(info.value)


def test_no_aws_credentials_is_a_config_error(standin):
    """With no credentials anywhere in the chain (metadata lookups disabled, an empty HOME),
    the error lists where botocore looked and is a VaultConfigError."""
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        with pytest.raises(VaultConfigError, match="No AWS credentials found") as info:
            client.login()
    assert "AWS_ACCESS_KEY_ID" in str(info.value) and "AWS_PROFILE" in str(info.value)


def test_missing_profile_is_a_config_error(standin, monkeypatch):
    """AWS_PROFILE naming no profile is a config error naming what botocore said."""
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        with pytest.raises(VaultConfigError, match="no-such-profile"):
            client.login()


def test_without_botocore_the_error_names_the_extra(standin, aws_env, monkeypatch):
    """Without botocore installed, the login says which extra to install."""
    aws_env()
    monkeypatch.setitem(sys.modules, "botocore", None)
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        with pytest.raises(VaultConfigError, match=r"gds-vault-snowflake\[aws\]"):
            client.login()


def test_threads_cause_one_aws_login(standin, aws_env):
    """16 threads needing a token at once cause one signed login."""
    aws_env()
    client = client_for(standin, VAULT_AWS_ROLE="etl")
    barrier = threading.Barrier(16)
    results: list[object] = []

    def work() -> None:
        barrier.wait()
        results.append(client.get_secret("secret/snowflake/etl", key="user"))

    with client:
        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == ["ETL"] * 16
    assert len(standin.logins) == 1


def test_forked_child_reuses_the_token(standin, aws_env):
    """A child forked after the login reads with the parent's token: no new AWS login."""
    aws_env()
    with client_for(standin, VAULT_AWS_ROLE="etl") as client:
        client.login()
        assert _in_child(lambda: client.get_secret("secret/team-a/app") == {"token": "abc"}) == 0
    assert len(standin.logins) == 1


def test_renewal_then_a_freshly_signed_login(standin, aws_env, vault):
    """A 3 s token (max 4 s) is renewed at two thirds of its TTL; the renewal comes back
    capped, so the client signs a new GetCallerIdentity and logs in again."""
    aws_env()
    with client_for(standin, VAULT_AWS_ROLE="short") as client:
        client.get_secret("secret/snowflake/etl")
        mark = vault.server.mark()
        time.sleep(2.1)
        assert client.get_secret("secret/snowflake/etl", key="user") == "ETL"
        assert len(vault.server.requests_since(mark, "auth/token/renew-self")) == 1
    assert len(standin.logins) == 2


def test_aws_auth_settings():
    """Region and STS endpoint are what the request is signed for; bad values are refused."""
    auth = AWSIAMAuth("etl", region="eu-west-1", sts_endpoint="https://sts.eu-west-1.amazonaws.com")
    assert (auth.region, auth.sts_endpoint) == ("eu-west-1", "https://sts.eu-west-1.amazonaws.com/")
    with pytest.raises(VaultConfigError, match="VAULT_AWS_STS_ENDPOINT"):
        AWSIAMAuth("etl", sts_endpoint="http://sts.example.com")
    with pytest.raises(VaultConfigError, match="VAULT_AWS_ROLE"):
        AWSIAMAuth("  ")
    with pytest.raises(VaultConfigError, match="VAULT_AUTH_METHOD to aws"):
        VaultClient.from_env({"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_AWS_ROLE": "etl"})
