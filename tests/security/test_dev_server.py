"""Review finding 3: the throwaway OpenBao server leaves the developer's Vault login alone.

``bao server -dev`` writes its root token to ``~/.vault-token`` unless told not to, which
replaced a developer's real ``vault login`` token with the dev root token (and left it
there); and a root token given as ``-dev-root-token-id=...`` is on the command line, which
every local user can read in ``ps``. :class:`gds_vault.testing.OpenBaoServer` passes
``-dev-no-store-token`` and gives the root token through the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gds_vault.testing import OpenBaoServer

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc"),
]

SENTINEL = "the developer's own vault login token, not to be replaced\n"


def test_dev_server_keeps_vault_token_and_argv_clean(tmp_path, monkeypatch):
    """With a real ~/.vault-token in HOME, starting, using and stopping a dev server leaves
    the file as it was, and the root token is not on the server's command line."""
    home = tmp_path / "home"
    home.mkdir()
    token_file = home / ".vault-token"
    token_file.write_text(SENTINEL)
    os.chmod(token_file, 0o600)
    before = token_file.stat()
    monkeypatch.setenv("HOME", str(home))

    with OpenBaoServer() as server:
        server.kv_put("secret", "dev/app", {"user": "DEV"})  # the server is really up
        assert server._process is not None
        argv = Path(f"/proc/{server._process.pid}/cmdline").read_bytes().split(b"\0")
        assert not [arg for arg in argv if server.root_token.encode() in arg]
        assert token_file.read_text() == SENTINEL

    after = token_file.stat()
    assert token_file.read_text() == SENTINEL
    assert (after.st_ino, after.st_mtime_ns, after.st_mode) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_mode,
    )
    assert sorted(p.name for p in home.iterdir()) == [".vault-token"]
