"""Outbound HTTP to addresses creators give us: media by URL, webhook callbacks.

A link typed by a creator must never reach the studio's own network (the database, the
broker, a cloud metadata service). Every hop is checked the same way:

1. only http and https, no user name or password in the link, no numeric host in an odd
   encoding (``2130706433``, ``0x7f.1``, ``0177.0.0.1``);
2. the host is resolved once, and every address it resolves to must be globally routable;
3. the connection goes to that checked address and nowhere else (a DNS answer that changes
   between the check and the connect is never asked for), while the URL keeps its host name,
   so TLS verifies the certificate against it and the Host header names it;
4. redirects are not followed by the client: each Location is checked as a new hop, at most
   ``MAX_REDIRECTS`` of them;
5. one deadline covers the whole exchange, every read and write included, so a server that
   drips bytes cannot hold a worker; a download stops past its size limit.

Every refusal is a `UrlRefused`: a sentence for the creator, naming the field, never the
addresses or errors behind it (those go to the log).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable

import httpcore
import httpx
from django.conf import settings

from engine.errors import InputRejected
from engine.media.sniff import EXTENSION_FOR_TYPE, TYPE_DESCRIPTIONS, sniff_type

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
CHUNK_BYTES = 64 * 1024
USER_AGENT = "AvatarStudio/1 (+fetching a link a creator gave)"

# A label that only an IP parser would read as a number: decimal, 0x-hex or 0-octal.
NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
CANONICAL_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
# IPv6 prefixes that carry an IPv4 address inside them.
NAT64_PREFIXES = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")]
TEREDO = ipaddress.ip_network("2001::/32")
# Cloud metadata services: refused by the ranges below anyway, named so no setting can let them through.
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}

# What NETGUARD_ALLOW_PRIVATE lets through, written out: newer Pythons call an IPv4-mapped
# loopback address loopback too, and that form stays refused.
LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
LOOPBACK_V6 = ipaddress.ip_address("::1")

KIND_NAMES = {"video": "a video", "image": "a photo", "audio": "an audio file"}

NOT_PUBLIC = "That link points to a private or local network address; use a link that anyone on the internet can open."


class UrlRefused(InputRejected):
    """A link the studio will not fetch or call, with the sentence that says why.

    `transient` marks what may work later (an unreachable or slow server, a host that does
    not resolve right now); everything else is wrong with the link itself.
    """

    def __init__(self, message: str, *, field: str, code: str, transient: bool = False):
        super().__init__(message, field=field, code=code)
        self.transient = transient


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    content_type: str
    size: int
    final_url: str


@dataclass(frozen=True)
class CheckedUrl:
    url: httpx.URL
    address: str  # the address that was checked: the only one the connection may go to


def check_url(url: str | httpx.URL, *, field: str) -> CheckedUrl:
    """Refuse a link the studio must not call; else the address it will connect to.

    Resolves the host: a host that does not resolve is refused (as transient).
    """
    parsed = _parse(url, field=field)
    host = _host(parsed)
    literal = _ip_literal(host)
    if literal is None and all(NUMERIC_LABEL.match(label) for label in host.split(".") if label):
        # Only an IP parser reads "2130706433" or "0x7f.1" as an address; no real link is written so.
        log.info("netguard: numeric host in an odd encoding refused: %r", host)
        raise UrlRefused(NOT_PUBLIC, field=field, code="url_not_public")
    addresses = [literal] if literal is not None else _resolve(host, parsed.port or _default_port(parsed), field=field)
    for address in addresses:
        if not _is_allowed(address):
            log.info("netguard: %s resolves to %s, which is not public", host, address)
            raise UrlRefused(NOT_PUBLIC, field=field, code="url_not_public")
    return CheckedUrl(url=parsed, address=str(addresses[0]))


def fetch_to_file(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    timeout: float,
    allowed_kinds: Collection[str],
    field: str = "url",
) -> FetchedFile:
    """Download a creator's link into `dest_dir`, checked hop by hop, within `max_bytes` and
    `timeout` seconds in all; the file is named after the type its bytes show.

    `allowed_kinds` holds major types ("video", "image", "audio") or exact MIME types. On any
    refusal no file is left behind.
    """
    deadline = time.monotonic() + timeout
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    partial = dest_dir / f"fetching-{uuid.uuid4().hex}.part"
    try:
        with _Exchange(url, "GET", field=field, deadline=deadline, timeout=timeout,
                       headers={"Accept-Encoding": "identity"}) as (response, final_url):
            if response.status_code // 100 != 2:
                raise _status_refusal(response.status_code, field=field)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes, field=field)
            size = 0
            with open(partial, "wb") as out:
                for chunk in response.iter_raw(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:  # a Content-Length that lied, or none at all
                        raise _too_large(max_bytes, field=field)
                    out.write(chunk)
                    if time.monotonic() > deadline:
                        raise _too_slow(timeout, field=field)
        content_type = sniff_type(partial)
        _check_kind(content_type, allowed_kinds, field=field)
        path = partial.with_name(f"fetched-{partial.stem.removeprefix('fetching-')}.{EXTENSION_FOR_TYPE[content_type]}")
        partial.rename(path)
        return FetchedFile(path=path, content_type=content_type, size=size, final_url=final_url)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str  # the Retry-After header as sent, "" without one


def post(url: str, *, content: bytes, headers: dict[str, str], timeout: float, field: str = "callback_url") -> Answer:
    """POST to a checked address without following redirects, within `timeout` seconds in all.

    A redirect is answered like any other status: the caller decides (webhooks count it a
    failure). The response body is not read.
    """
    deadline = time.monotonic() + timeout
    with _Exchange(url, "POST", field=field, deadline=deadline, timeout=timeout, headers=headers,
                   content=content, follow=False) as (response, _):
        return Answer(status=response.status_code, retry_after=response.headers.get("Retry-After", ""))


# ---------------------------------------------------------------------------------------------
# One exchange: hop by hop, each to its checked address.

class _Exchange:
    def __init__(self, url, method, *, field, deadline, timeout, headers, content=None, follow=True):
        self.url, self.method, self.field = url, method, field
        self.deadline, self.timeout = deadline, timeout
        self.headers, self.content, self.follow = headers, content, follow
        self.client: httpx.Client | None = None
        self.response: httpx.Response | None = None

    def __enter__(self) -> tuple[httpx.Response, str]:
        try:
            return self._follow()
        except BaseException as error:
            self._close()
            converted = _network_refusal(error, timeout=self.timeout, field=self.field)
            if converted is error:
                raise
            raise converted from error

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close()
        if exc is not None:
            converted = _network_refusal(exc, timeout=self.timeout, field=self.field)
            if converted is not exc:
                raise converted from exc

    def _follow(self) -> tuple[httpx.Response, str]:
        url: str | httpx.URL = self.url
        for _ in range(MAX_REDIRECTS + 1):
            checked = check_url(url, field=self.field)
            self._close()
            self.client = _pinned_client(checked, deadline=self.deadline)
            request = self.client.build_request(
                self.method, checked.url, content=self.content,
                headers={"User-Agent": USER_AGENT, **self.headers},
            )
            self.response = self.client.send(request, stream=True)
            location = self.response.headers.get("Location")
            if not self.follow or self.response.status_code not in REDIRECT_STATUSES or not location:
                return self.response, str(checked.url)
            try:
                url = checked.url.join(location)
            except httpx.InvalidURL:
                raise UrlRefused("That link redirects to an address that is not valid.", field=self.field,
                                 code="url_invalid") from None
        raise UrlRefused(
            f"That link redirects more than {MAX_REDIRECTS} times; use the address of the file itself.",
            field=self.field, code="url_too_many_redirects",
        )

    def _close(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None
        if self.client is not None:
            self.client.close()
            self.client = None


def _pinned_client(checked: CheckedUrl, *, deadline: float) -> httpx.Client:
    """A client that can connect to one host only, at its checked address.

    httpx resolves names inside httpcore's network backend; this backend never resolves: it
    maps the URL's host to the address that was checked and refuses any other host. Proxies
    from the environment are ignored: they would resolve the name again on their side.
    """
    backend = _PinnedBackend(host=_host(checked.url), address=checked.address, deadline=deadline)
    transport = httpx.HTTPTransport(verify=_ssl_context(), retries=0)
    transport._pool = httpcore.ConnectionPool(  # the one seam httpx offers for a network backend
        ssl_context=_ssl_context(),
        max_connections=1,
        http1=True,
        http2=False,
        retries=0,
        network_backend=backend,
    )
    remaining = max(deadline - time.monotonic(), 0.001)
    return httpx.Client(transport=transport, trust_env=False, follow_redirects=False, timeout=remaining)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Certificates verified against the URL's host name; loading the CA bundle takes ~0.1 s, so once."""
    return httpx.create_ssl_context()


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, *, host: str, address: str, deadline: float):
        self.host, self.address, self.deadline = host.lower(), address, deadline
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if host.lower().strip("[]") != self.host.strip("[]"):
            raise httpcore.ConnectError(f"refusing to connect to unchecked host {host!r}")
        stream = self.inner.connect_tcp(
            self.address, port, timeout=_clamp(timeout, self.deadline),
            local_address=local_address, socket_options=socket_options,
        )
        return _DeadlineStream(stream, self.deadline)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are never reached from a creator's link")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """Every read and write waits at most until the exchange's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self.inner, self.deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _clamp(timeout, self.deadline, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _clamp(timeout, self.deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None):
        inner = self.inner.start_tls(ssl_context, server_hostname, _clamp(timeout, self.deadline))
        return _DeadlineStream(inner, self.deadline)

    def get_extra_info(self, info: str):
        return self.inner.get_extra_info(info)


def _clamp(timeout: float | None, deadline: float, expired=httpcore.ConnectTimeout) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the exchange's deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


# ---------------------------------------------------------------------------------------------
# Addresses

def _parse(url: str | httpx.URL, *, field: str) -> httpx.URL:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url).strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UrlRefused("That link is not a valid web address.", field=field, code="url_invalid") from None
    if parsed.scheme not in ("http", "https"):
        raise UrlRefused("Use a link that starts with https:// (or http://).", field=field, code="url_scheme")
    if not parsed.host:
        raise UrlRefused("That link is not a valid web address.", field=field, code="url_invalid")
    if parsed.userinfo:
        raise UrlRefused(
            "Links with a user name or password in them are not accepted; share a link that opens without signing in.",
            field=field, code="url_credentials",
        )
    return parsed


def _host(url: httpx.URL) -> str:
    """The host as it goes on the wire (an international name in its xn-- form)."""
    return url.raw_host.decode("ascii").lower()


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    candidate = host.strip("[]").split("%")[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if address.version == 4 and not CANONICAL_IPV4.match(candidate):
        return None  # e.g. "0177.0.0.1": left to the odd-encoding check
    return address


def _resolve(host: str, port: int, *, field: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        log.info("netguard: %r does not resolve", host)
        raise UrlRefused(
            "The server in that link could not be found; check the address.",
            field=field, code="url_unresolvable", transient=True,
        ) from None
    addresses = []
    for family, _, _, _, sockaddr in answers:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(sockaddr[0].split("%")[0])
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise UrlRefused("The server in that link could not be found; check the address.",
                         field=field, code="url_unresolvable", transient=True)
    return addresses


def _is_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address in METADATA_ADDRESSES:
        return False
    if settings.NETGUARD_ALLOW_PRIVATE and (address in LOOPBACK_V4 or address == LOOPBACK_V6):
        return True  # tests and a developer's own machine; no other range is ever let through
    return is_public(address)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, and not hiding a non-public IPv4 address inside an IPv6 one."""
    if (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    ):
        return False
    if address.version == 4:
        return address not in ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
    if address.is_site_local or address in TEREDO:
        return False
    embedded = _embedded_ipv4(address)
    return embedded is None or is_public(embedded)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in NAT64_PREFIXES) or int(address) >> 32 == 0:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


# ---------------------------------------------------------------------------------------------
# Sentences

def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB" if size < 1024**3 else f"{size / 1024**3:g} GB"


def _too_large(max_bytes: int, *, field: str) -> UrlRefused:
    return UrlRefused(f"The file at that link is larger than {_megabytes(max_bytes)}; use a smaller file.",
                      field=field, code="url_too_large")


def _too_slow(timeout: float, *, field: str) -> UrlRefused:
    return UrlRefused(
        f"The server at that link did not answer within {timeout:g} seconds; try again later, or use a faster host.",
        field=field, code="url_timeout", transient=True,
    )


def _status_refusal(status: int, *, field: str) -> UrlRefused:
    if status in (401, 403):
        message = "The server at that link refused to share the file; use a link that opens without signing in."
    elif status in (404, 410):
        message = "There is no file at that link (the server says it was not found); check the address."
    elif status in REDIRECT_STATUSES:
        message = "That link redirects without saying where to; use the address of the file itself."
    else:
        message = f"The server at that link answered with an error (HTTP {status}); check the link and try again."
    return UrlRefused(message, field=field, code="url_http_error", transient=status >= 500 or status == 429)


def _network_refusal(error: BaseException, *, timeout: float, field: str) -> BaseException:
    """The sentence for a failed exchange; anything that is not a network failure as it was."""
    if isinstance(error, UrlRefused) or not isinstance(error, httpx.HTTPError):
        return error
    log.info("netguard: exchange failed: %r", error)
    if isinstance(error, httpx.TimeoutException):
        return _too_slow(timeout, field=field)
    if isinstance(error, httpx.ConnectError) and _caused_by(error, ssl.SSLError):
        return UrlRefused("The server at that link has no valid certificate for its name; use another link.",
                          field=field, code="url_tls")
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
        return UrlRefused("The connection to the server at that link broke off; try again later.",
                          field=field, code="url_unreachable", transient=True)
    return UrlRefused("Could not connect to the server at that link; check that it is online and try again.",
                      field=field, code="url_unreachable", transient=True)


def _caused_by(error: BaseException, kind: type) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _check_kind(content_type: str | None, allowed_kinds: Iterable[str], *, field: str) -> None:
    allowed = set(allowed_kinds)
    if content_type is not None and (content_type in allowed or content_type.split("/")[0] in allowed):
        return
    wanted = " or ".join(KIND_NAMES.get(kind, TYPE_DESCRIPTIONS.get(kind, kind)) for kind in sorted(allowed))
    found = (
        TYPE_DESCRIPTIONS[content_type] if content_type
        else "not a media file the studio recognises (it may be a web page)"
    )
    raise UrlRefused(f"The file at that link is {found}; link to {wanted} instead.", field=field, code="url_wrong_type")
