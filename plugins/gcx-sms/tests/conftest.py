from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gcx_sms
import pytest

pytest_plugins = ["gcx_core.testing"]


class Gateway:
    """A small SMS gateway on loopback: records each request, answers as a test tells it.

    `answers` is used up one per request (status, headers, body, seconds to wait first);
    when empty, 200 with a message id.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], bytes, float]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                gateway.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
                status, headers, answer, wait = (
                    gateway.answers.pop(0)
                    if gateway.answers
                    else (200, {}, b'{"id": "sms-%d"}' % len(gateway.requests), 0.0)
                )
                time.sleep(wait)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body: bytes = b"{}", wait: float = 0.0, **headers: str) -> None:
        self.answers.append((status, headers, body, wait))


@pytest.fixture(name="gateway")
def _gateway(monkeypatch: pytest.MonkeyPatch) -> Any:
    gateway = Gateway()
    monkeypatch.setenv("GCX_SMS_URL", gateway.url)
    monkeypatch.setenv("GCX_SMS_AUTH_HEADER", "Authorization: Bearer gateway-key")
    monkeypatch.setenv("GCX_SMS_TIMEOUT", "1")
    yield gateway
    gateway.server.shutdown()
    gateway.server.server_close()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins() -> list[object]:
    return [gcx_sms]  # GCX's own parts (gcx_notify, gcx_web) come with gcx_core.testing
