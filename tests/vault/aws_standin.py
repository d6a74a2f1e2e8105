"""Test doubles for AWS IAM auth: an STS that verifies signatures, and Vault's side.

OpenBao ships no ``aws`` auth method, and the tests reach nothing beyond loopback, so:

- :class:`MotoSTS` runs moto in server mode (a subprocess on 127.0.0.1). After its first
  ``setup_calls`` requests (creating IAM users and keys) it authenticates every request:
  a SigV4 signature made with a key it does not hold, or over headers that were changed
  afterwards, gets ``SignatureDoesNotMatch``. moto computes signatures with botocore, the
  library the client signs with, so the two agreeing is weaker evidence than real STS.
- :class:`AwsLoginStandIn` plays Vault's ``auth/<mount>/login`` for the iam type, after
  Vault's ``pathLoginUpdateIam`` (builtin/credential/aws/path_login.go): it decodes the
  base64 URL, body and headers, requires POST and ``Action=GetCallerIdentity``, checks
  the ``X-Vault-AWS-IAM-Server-ID`` value and that it is among the signed headers, sends
  the request to its configured STS endpoint with the Host header of the signed URL (as
  Vault's ``buildHttpRequest`` does), reads the caller's ARN from STS's XML answer and
  matches it against the role's bound ARN. It then mints a token with the role's
  policies on the real OpenBao server; every other request is passed to that server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from werkzeug.wrappers import Request, Response

from gds_vault.testing import OpenBaoServer, free_port


class MotoSTS:
    """moto's server on a loopback port, authenticating requests after the set-up ones."""

    def __init__(self, setup_calls: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environ.update(INITIAL_NO_AUTH_ACTION_COUNT=str(setup_calls), AWS_EC2_METADATA_DISABLED="true")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/moto-api/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto's server did not start")

    def client(self, service: str, access_key: str = "bootstrap", secret_key: str = "bootstrap") -> Any:
        import botocore.session

        return botocore.session.Session().create_client(
            service,
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


@dataclass
class AwsLoginStandIn:
    """Vault's aws login (iam type) in front of a real OpenBao server; see the module."""

    openbao: OpenBaoServer
    sts_endpoint: str
    mount: str = "aws"
    server_id: str | None = None
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    logins: list[str] = field(default_factory=list)  # caller ARNs of the accepted logins

    def add_role(self, name: str, bound_arn: str, policies: list[str], **token: Any) -> None:
        self.roles[name] = {"bound_arn": bound_arn, "policies": policies, "token": token}

    def __call__(self, request: Request) -> Response:
        if request.method in ("POST", "PUT") and request.path == f"/v1/auth/{self.mount}/login":
            try:
                return self._login(json.loads(request.get_data() or b"{}"))
            except _Refused as refused:
                return _answer(400, {"errors": [str(refused)]})
        return self._forward(request)

    def _forward(self, request: Request) -> Response:
        upstream = self.openbao.session.request(
            request.method,
            self.openbao.addr + request.full_path.rstrip("?"),
            data=request.get_data(),
            headers={k: v for k, v in request.headers if k.lower().startswith("x-vault")},
            timeout=10,
        )
        return Response(upstream.content, upstream.status_code, content_type="application/json")

    def _login(self, data: dict[str, Any]) -> Response:
        if data.get("iam_http_request_method") != "POST":
            raise _Refused("invalid iam_http_request_method; currently only 'POST' is supported")
        url = urlsplit(_b64(data, "iam_request_url"))
        body = _b64(data, "iam_request_body")
        headers: dict[str, list[str]] = json.loads(_b64(data, "iam_request_headers"))
        headers = {k: v if isinstance(v, list) else [v] for k, v in headers.items()}
        if parse_qs(body).get("Action") != ["GetCallerIdentity"]:
            raise _Refused("iam_request_body must be an sts:GetCallerIdentity request")
        if self.server_id is not None:
            _check_server_id(headers, self.server_id)
        # As Vault: send to the configured endpoint, with the Host the client signed for.
        sent = {k: ", ".join(v) for k, v in headers.items()}
        sent["Host"] = url.netloc
        answer = requests.post(
            self.sts_endpoint + (url.path or "/"), data=body.encode(), headers=sent, timeout=10
        )
        if answer.status_code != 200:
            raise _Refused(
                "error making upstream request: received error code "
                f"{answer.status_code} from STS: {answer.text[:300]}"
            )
        arn = _caller_arn(answer.text)
        role_name = data.get("role") or arn.rsplit("/", 1)[-1]
        role = self.roles.get(role_name)
        if role is None:
            raise _Refused(f"entry for role {role_name} not found")
        if _canonical(arn) != role["bound_arn"]:
            raise _Refused(f"IAM Principal {arn!r} does not belong to the role {role_name!r}")
        self.logins.append(arn)
        created = self.openbao.api(
            "POST",
            "auth/token/create",
            {"policies": role["policies"], "renewable": True, **role["token"]},
        )
        assert created is not None
        return _answer(200, {"auth": created["auth"]})


class _Refused(Exception):
    """A login refused with Vault's 400 and this error text."""


def _answer(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _b64(data: dict[str, Any], name: str) -> str:
    if not data.get(name):
        raise _Refused(f"missing {name}")
    return base64.b64decode(data[name]).decode()


def _check_server_id(headers: dict[str, list[str]], required: str) -> None:
    provided = next(
        (",".join(v) for k, v in headers.items() if k.lower() == "x-vault-aws-iam-server-id"), ""
    )
    if not provided:
        raise _Refused('error validating X-Vault-AWS-IAM-Server-ID header: missing header')
    if provided != required:
        raise _Refused(
            "error validating X-Vault-AWS-IAM-Server-ID header: "
            f"expected {required!r} but got {provided!r}"
        )
    authorization = ",".join(headers.get("Authorization", []))
    signed = re.search(r"SignedHeaders=([^,]+)", authorization)
    if not signed or "x-vault-aws-iam-server-id" not in signed.group(1).split(";"):
        raise _Refused("error validating X-Vault-AWS-IAM-Server-ID header: vault header wasn't signed")


def _caller_arn(xml: str) -> str:
    for element in ET.fromstring(xml).iter():  # noqa: S314 - moto's answer on loopback
        if element.tag.endswith("Arn"):
            return element.text or ""
    raise _Refused("error parsing STS response")


def _canonical(arn: str) -> str:
    """arn:aws:sts::<acct>:assumed-role/<role>/<session> -> arn:aws:iam::<acct>:role/<role>."""
    _, partition, _, _, account, resource = arn.split(":", 5)
    kind, *rest = resource.split("/")
    if kind == "assumed-role":
        return f"arn:{partition}:iam::{account}:role/{rest[0]}"
    return f"arn:{partition}:iam::{account}:{kind}/{rest[-1]}"
