from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import gcx_webhook
import pytest

pytest_plugins = ["gcx_core.testing"]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # deliveries arrive together; the default backlog of 5 drops some


class Receiver:
    """A webhook receiver on loopback: keeps each request's headers and raw body, answers as
    a test tells it (`answer(status, wait=..., **headers)`, used up one per request; 204
    when none is left)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, str], float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, wait = (
                    receiver.answers.pop(0) if receiver.answers else (204, {}, 0.0)
                )
                time.sleep(wait)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, wait: float = 0.0, **headers: str) -> None:
        self.answers.append((status, headers, wait))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="receiver")
def _receiver(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GCX_WEBHOOK_TIMEOUT", "1")
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(name="gcx_extra_plugins")
def _plugins() -> list[object]:
    return [gcx_webhook]


@pytest.fixture(name="gcx_database_url", params=["sqlite", "postgres"])
def _database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"gcx_{request.param}_database_url"))
