"""STARTTLS and AUTH against an aiosmtpd server configured to require both."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from gcx_core.settings import SmtpSettings
from gcx_core.testing import unavailable
from gcx_notify.channels import PermanentFailure, RenderedMessage, SmtpChannel, TemporaryFailure

from .conftest import Sink


@pytest.fixture(name="tls_context", scope="module")
def _tls_context(tmp_path_factory):
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make the test certificate (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            d / "key.pem",
            "-out",
            d / "cert.pem",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    return context


class Credentials:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret-pass"
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture(name="tls_server")
async def _tls_server(tls_context):
    sink, creds, sessions = Sink(), Credentials(), []

    def factory():
        smtp = SMTP(
            sink,
            hostname="gcx-tls",
            require_starttls=True,
            tls_context=tls_context,
            authenticator=creds,
            auth_require_tls=True,
            auth_required=True,
        )
        sessions.append(smtp)
        return smtp

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    yield sink, creds, server.sockets[0].getsockname()[1], sessions
    server.close()
    await server.wait_closed()


def message(n: int, to: str = "owner@example.com") -> RenderedMessage:
    return RenderedMessage(
        n,
        "email",
        to,
        f"Subject {n}",
        "text body\n",
        "<p>html</p>",
        f"<gcx.notification.{n}@gcx.example>",
        "GCX <noreply@gcx.example>",
    )


async def test_starttls_and_auth_with_a_reused_connection(tls_server):
    sink, creds, port, sessions = tls_server
    channel = SmtpChannel(
        SmtpSettings(
            "127.0.0.1",
            port,
            starttls=True,
            username="mailer",
            password="s3cret-pass",
            validate_certs=False,
        )
    )
    try:
        for n in range(1, 4):
            assert await channel.send(message(n)) == f"<gcx.notification.{n}@gcx.example>"
    finally:
        await channel.close()
    assert [m["Subject"] for m in sink.messages] == ["Subject 1", "Subject 2", "Subject 3"]
    assert creds.logins == ["mailer"], "one login: the connection was reused"
    assert len(sessions) == 1
    assert sessions[0].session.ssl is not None, "the session was upgraded with STARTTLS"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_wrong_credentials_are_permanent():
    # Without TLS here: the point is the 535 reply, which must not be retried.
    creds = Credentials()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(Sink(), authenticator=creds, auth_require_tls=False, auth_required=True),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    channel = SmtpChannel(
        SmtpSettings(
            "127.0.0.1", port, starttls=False, username="mailer", password="wrong", timeout=5
        )
    )
    try:
        with pytest.raises(PermanentFailure, match="535"):
            await channel.send(message(1))
    finally:
        await channel.close()
        server.close()
        await server.wait_closed()


async def test_plain_text_is_refused_by_a_server_that_requires_tls(tls_server):
    _, _, port, _ = tls_server
    channel = SmtpChannel(SmtpSettings("127.0.0.1", port, starttls=False, timeout=5))
    with pytest.raises(PermanentFailure, match="530"):
        await channel.send(message(1))
    await channel.close()


async def test_an_unreachable_server_is_temporary():
    from gcx_core.testing.servers import free_port

    channel = SmtpChannel(SmtpSettings("127.0.0.1", free_port(), starttls=False, timeout=2))
    with pytest.raises(TemporaryFailure):
        await channel.send(message(1))
    await channel.close()
