"""A real HTTP server on 127.0.0.1 in a thread, for the address guard and webhook tests.

Each route is a function of the request handler; every request is recorded (method, path,
headers, body) so a test can check what actually went over the wire.
"""

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    server: ThreadingHTTPServer
    routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    local: LocalServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.local.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        route = self.local.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as the slow-server tests want it to

    do_GET = do_POST = _handle

    def log_message(self, format, *args) -> None:
        pass


def start(tls: ssl.SSLContext | None = None) -> LocalServer:
    """Serve on 127.0.0.1; with `tls` (a server-side context) as HTTPS."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.block_on_close = False
    local = LocalServer(server=server)
    server.RequestHandlerClass = type("Handler", (_Handler,), {"local": local})
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return local


def stop(local: LocalServer) -> None:
    local.server.shutdown()
    local.server.server_close()


# Routes


def body(data: bytes, *, status: int = 200, content_type: str = "application/octet-stream",
         declare_length: bool = True, headers: dict[str, str] | None = None):
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if declare_length:
            handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    return route


def status(code: int, headers: dict[str, str] | None = None):
    return body(b"", status=code, headers=headers)


def redirect(location: str, code: int = 302):
    return status(code, {"Location": location})


def slow_body(*, seconds: float, prefix: bytes = b""):
    """Headers at once, then a byte every 50 ms for up to `seconds` (bounded either way)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.end_headers()
        handler.wfile.write(prefix)
        handler.wfile.flush()
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            handler.wfile.write(b"\0")
            handler.wfile.flush()
            time.sleep(0.05)

    return route


def slow_headers(*, seconds: float):
    """A status line, then one header byte every 50 ms: never a complete response."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.0 200 OK\r\nX-Drip: ")
        handler.wfile.flush()
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            handler.wfile.write(b"a")
            handler.wfile.flush()
            time.sleep(0.05)

    return route
