"""The address guard: refusals without a connection, and real fetches from a local server."""

import datetime
import io
import ssl
import socket
import time

import numpy as np
import pytest
from PIL import Image
from skimage import data

from studio import netguard
from studio.netguard import UrlRefused, fetch_to_file
from tests.studio import local_http

PUBLIC_ADDRESS = "93.184.215.14"  # a globally routable address; no test ever connects to it


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(data.astronaut()[::8, ::8])).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes()


@pytest.fixture
def server():
    local = local_http.start()
    yield local
    local_http.stop(local)


@pytest.fixture
def loopback_allowed(settings):
    settings.NETGUARD_ALLOW_PRIVATE = True


@pytest.fixture
def connections(monkeypatch):
    """Every TCP connection attempted, as (host, port); each goes to 127.0.0.1 whatever was asked,
    so a 'public' host can be served by the local server without any traffic leaving the machine."""
    attempted = []

    def create_connection(address, timeout=None, *args, **kwargs):
        attempted.append(address)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", address[1]))  # by number: no name lookup of its own
        return sock

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempted


def resolve_as(monkeypatch, *answers: list[str]) -> list[str]:
    """DNS answers each call in turn (the last one repeats); the hosts asked for."""
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        addresses = answers[min(len(asked), len(answers)) - 1]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


REFUSED_WHATEVER_THE_SETTING = [
    "http://10.0.0.1/clip.mp4",
    "http://172.16.5.4/clip.mp4",
    "http://192.168.1.1/clip.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.64.0.1/clip.mp4",
    "http://224.0.0.1/clip.mp4",
    "http://240.0.0.1/clip.mp4",
    "http://255.255.255.255/clip.mp4",
    "http://0.0.0.0/clip.mp4",
    "http://[::]/clip.mp4",
    "http://[fe80::1]/clip.mp4",
    "http://[fec0::1]/clip.mp4",
    "http://[fc00::1]/clip.mp4",
    "http://[ff02::1]/clip.mp4",
    "http://[::ffff:127.0.0.1]/clip.mp4",
    "http://[::ffff:7f00:1]/clip.mp4",
    "http://[::ffff:10.0.0.1]/clip.mp4",
    "http://[::127.0.0.1]/clip.mp4",
    "http://[2002:7f00:1::1]/clip.mp4",
    "http://[2002:a00:1::1]/clip.mp4",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/clip.mp4",
    "http://[64:ff9b::a00:1]/clip.mp4",
    "http://2130706433/clip.mp4",
    "http://0x7f.1/clip.mp4",
    "http://0x7f000001/clip.mp4",
    "http://0177.0.0.1/clip.mp4",
    "http://017700000001/clip.mp4",
    "http://127.1/clip.mp4",
    "http://10.1/clip.mp4",
    "ftp://example.com/clip.mp4",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:secret@example.com/clip.mp4",
    "not a link",
    "http:///clip.mp4",
]


@pytest.mark.parametrize("url", REFUSED_WHATEVER_THE_SETTING)
def test_it_refuses_non_public_and_odd_addresses_without_connecting(url, loopback_allowed, connections, tmp_path):
    with pytest.raises(UrlRefused) as refused:
        fetch_to_file(url, tmp_path, max_bytes=1_000_000, timeout=2, allowed_kinds={"video"}, field="video_url")
    assert connections == []
    assert refused.value.field == "video_url"
    assert refused.value.code.startswith("url_")
    assert str(refused.value).endswith(".")
    assert not any(part in str(refused.value) for part in ("127.", "10.0", "169.254", "Error", "errno"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["http://127.0.0.1/clip.mp4", "http://localhost/clip.mp4", "http://[::1]/clip.mp4",
                                 "http://127.3.2.1/clip.mp4"])
def test_it_refuses_loopback_by_default(url, connections, tmp_path):
    with pytest.raises(UrlRefused) as refused:
        fetch_to_file(url, tmp_path, max_bytes=1_000_000, timeout=2, allowed_kinds={"video"}, field="video_url")
    assert refused.value.code == "url_not_public"
    assert "private or local network address" in str(refused.value)
    assert connections == []


def test_it_refuses_a_host_with_any_non_public_answer(monkeypatch, connections, tmp_path):
    resolve_as(monkeypatch, [PUBLIC_ADDRESS, "10.0.0.7"])
    with pytest.raises(UrlRefused, match="private or local network"):
        fetch_to_file("http://media.example/clip.png", tmp_path, max_bytes=10**6, timeout=2, allowed_kinds={"image"})
    assert connections == []


def test_it_connects_only_to_the_address_it_checked(server, monkeypatch, connections, tmp_path):
    """DNS rebinding: the second answer would be loopback; the connection still goes to the first."""
    asked = resolve_as(monkeypatch, [PUBLIC_ADDRESS], ["127.0.0.1"])
    server.routes["/clip.png"] = local_http.body(PNG, content_type="image/png")

    fetched = fetch_to_file(f"http://Media.Example:{server.port}/clip.png", tmp_path, max_bytes=10**6, timeout=5,
                            allowed_kinds={"image"})

    assert asked == ["media.example"]
    assert connections == [(PUBLIC_ADDRESS, server.port)]
    assert server.seen[0].headers["host"] == f"media.example:{server.port}"  # the name, not the address
    assert fetched.content_type == "image/png"
    assert fetched.path.read_bytes() == PNG
    assert fetched.path.suffix == ".png"
    assert fetched.size == len(PNG)


def test_a_redirect_to_loopback_is_refused(server, monkeypatch, connections, tmp_path):
    resolve_as(monkeypatch, [PUBLIC_ADDRESS])
    server.routes["/clip.png"] = local_http.redirect(server.url("/real.png"))
    server.routes["/real.png"] = local_http.body(PNG, content_type="image/png")

    with pytest.raises(UrlRefused, match="private or local network"):
        fetch_to_file(f"http://media.example:{server.port}/clip.png", tmp_path, max_bytes=10**6, timeout=5,
                      allowed_kinds={"image"})
    assert connections == [(PUBLIC_ADDRESS, server.port)]  # the first hop only
    assert [seen.path for seen in server.seen] == ["/clip.png"]
    assert list(tmp_path.iterdir()) == []


def test_it_follows_three_redirects_and_checks_each(server, loopback_allowed, tmp_path):
    server.routes["/a"] = local_http.redirect("/b", 301)
    server.routes["/b"] = local_http.redirect(server.url("/c"), 307)
    server.routes["/c"] = local_http.redirect(server.url("/clip.png", host="localhost"), 308)
    server.routes["/clip.png"] = local_http.body(PNG, content_type="text/html")  # the bytes decide, not the header

    fetched = fetch_to_file(server.url("/a"), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"image/png"})

    assert fetched.final_url == server.url("/clip.png", host="localhost")
    assert fetched.content_type == "image/png"
    assert [seen.path for seen in server.seen] == ["/a", "/b", "/c", "/clip.png"]


def test_it_refuses_a_fourth_redirect(server, loopback_allowed, tmp_path):
    for hop in "abcd":
        server.routes[f"/{hop}"] = local_http.redirect(f"/{chr(ord(hop) + 1)}")
    server.routes["/e"] = local_http.body(PNG)
    with pytest.raises(UrlRefused, match="redirects more than 3 times"):
        fetch_to_file(server.url("/a"), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"image"})
    assert [seen.path for seen in server.seen] == ["/a", "/b", "/c", "/d"]


def test_a_redirect_to_a_private_or_metadata_address_is_refused(server, loopback_allowed, connections, tmp_path):
    server.routes["/metadata"] = local_http.redirect("http://169.254.169.254/latest/meta-data/iam")
    server.routes["/private"] = local_http.redirect("http://10.0.0.1:8080/admin")
    for path in ("/metadata", "/private"):
        with pytest.raises(UrlRefused, match="private or local network"):
            fetch_to_file(server.url(path), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"image"})
    assert connections == [("127.0.0.1", server.port)] * 2


def test_an_html_page_where_a_video_was_expected_is_refused(server, loopback_allowed, tmp_path):
    server.routes["/clip.mp4"] = local_http.body(b"<!doctype html><html><body>Sign in</body></html>",
                                                 content_type="video/mp4")
    with pytest.raises(UrlRefused) as refused:
        fetch_to_file(server.url("/clip.mp4"), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"video"},
                      field="video_url")
    assert str(refused.value) == (
        "The file at that link is not a media file the studio recognises (it may be a web page); "
        "link to a video instead."
    )
    assert refused.value.code == "url_wrong_type"
    assert list(tmp_path.iterdir()) == []


def test_a_photo_where_audio_was_expected_is_named(server, loopback_allowed, tmp_path):
    server.routes["/voice"] = local_http.body(PNG)
    with pytest.raises(UrlRefused, match="^The file at that link is a PNG image; link to an audio file instead.$"):
        fetch_to_file(server.url("/voice"), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"audio"})


def test_an_oversized_body_is_aborted_and_removed(server, loopback_allowed, tmp_path):
    big = PNG + bytes(3 * 1024 * 1024)
    server.routes["/declared"] = local_http.body(big)
    server.routes["/undeclared"] = local_http.body(big, declare_length=False)
    for path in ("/declared", "/undeclared"):
        with pytest.raises(UrlRefused, match="larger than 1 MB") as refused:
            fetch_to_file(server.url(path), tmp_path, max_bytes=1024 * 1024, timeout=5, allowed_kinds={"image"})
        assert refused.value.code == "url_too_large"
        assert list(tmp_path.iterdir()) == []


def test_a_slow_server_times_out_within_the_deadline(server, loopback_allowed, tmp_path):
    server.routes["/drip-body"] = local_http.slow_body(seconds=6, prefix=PNG)
    server.routes["/drip-headers"] = local_http.slow_headers(seconds=6)
    for path in ("/drip-body", "/drip-headers"):
        started = time.monotonic()
        with pytest.raises(UrlRefused, match="within 1 seconds") as refused:
            fetch_to_file(server.url(path), tmp_path, max_bytes=10**6, timeout=1, allowed_kinds={"image"})
        assert time.monotonic() - started < 2.5
        assert refused.value.transient
        assert list(tmp_path.iterdir()) == []


def test_error_statuses_get_sentences(server, loopback_allowed, tmp_path):
    server.routes["/private"] = local_http.status(403)
    with pytest.raises(UrlRefused, match="refused to share the file"):
        fetch_to_file(server.url("/private"), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"image"})
    with pytest.raises(UrlRefused, match="no file at that link"):
        fetch_to_file(server.url("/missing"), tmp_path, max_bytes=10**6, timeout=5, allowed_kinds={"image"})


def test_a_host_that_does_not_resolve_is_refused_as_transient(monkeypatch, tmp_path):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(UrlRefused, match="could not be found") as refused:
        fetch_to_file("https://nowhere.example/clip.mp4", tmp_path, max_bytes=10, timeout=1, allowed_kinds={"video"})
    assert refused.value.transient


def test_a_server_that_is_down_is_unreachable(loopback_allowed, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(UrlRefused, match="Could not connect") as refused:
        fetch_to_file(f"http://127.0.0.1:{closed_port}/x", tmp_path, max_bytes=10, timeout=2, allowed_kinds={"video"})
    assert refused.value.transient


def test_public_addresses_pass():
    for address in ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "2002:808:808::1"]:
        assert netguard.is_public(netguard.ipaddress.ip_address(address)), address


def certificate_authority(tmp_path, server_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str]]:
    """A test CA and a certificate it signed for `server_name`: the server's context, a client
    context trusting only that CA, and the list the server fills with the SNI names it is sent."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("Test CA")).issuer_name(name("Test CA"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(name(server_name)).issuer_name(ca.subject)
        .public_key(leaf_key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(tmp_path / "leaf.pem")
    names_sent = []
    server_side.sni_callback = lambda sock, sni, context: names_sent.append(sni)
    client_side = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server_side, client_side, names_sent


@pytest.mark.parametrize("certificate_for", ["media.example", "other.example"])
def test_tls_is_verified_against_the_host_name_at_the_checked_address(certificate_for, monkeypatch, connections,
                                                                      tmp_path):
    server_side, client_side, names_sent = certificate_authority(tmp_path, certificate_for)
    monkeypatch.setattr(netguard, "_ssl_context", lambda: client_side)
    server = local_http.start(tls=server_side)
    try:
        server.routes["/clip.png"] = local_http.body(PNG)
        resolve_as(monkeypatch, [PUBLIC_ADDRESS])
        url = f"https://media.example:{server.port}/clip.png"
        downloads = tmp_path / "downloads"
        if certificate_for == "media.example":
            fetched = fetch_to_file(url, downloads, max_bytes=10**6, timeout=5, allowed_kinds={"image"})
            assert fetched.path.read_bytes() == PNG
            assert server.seen[0].headers["host"] == f"media.example:{server.port}"
        else:
            with pytest.raises(UrlRefused, match="no valid certificate for its name"):
                fetch_to_file(url, downloads, max_bytes=10**6, timeout=5, allowed_kinds={"image"})
            assert server.seen == []
            assert list(downloads.iterdir()) == []
    finally:
        local_http.stop(server)
    assert names_sent[:1] == ["media.example"]
    assert connections == [(PUBLIC_ADDRESS, server.port)]
