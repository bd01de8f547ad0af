"""Signed media URLs as providers fetch them: A2E's URL rules (no spaces, no redirects, the right
Content-Type, ranges), expiry and tampering, and presigned URLs in S3 mode."""

import time
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from providers.media import media_url
from studio.services import user_create
from tests.conftest import BUCKET
from tests.factories import FIXTURES, ready_avatar

PUBLIC = "https://studio.example.com"


@pytest.fixture
def avatar(db, settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    alice = user_create(username="alice", password="correct horse battery")
    return ready_avatar(team=alice.teams.get(), user=alice, kind="video")


def path_of(url: str) -> str:
    return urlsplit(url).path


def test_a_signed_url_serves_the_file_without_signing_in_with_its_type(client, avatar):
    url = media_url(avatar.media.name)
    assert url.startswith(PUBLIC + "/provider-media/") and url.endswith("/media.mp4")
    assert not any(ch.isspace() for ch in url)
    response = client.get(path_of(url))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == (FIXTURES / "clip.mp4").read_bytes()
    photo = client.get(path_of(media_url(avatar.poster.name)))
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"


def test_a_signed_url_answers_byte_ranges(client, avatar):
    response = client.get(path_of(media_url(avatar.media.name)), HTTP_RANGE="bytes=0-0")
    assert response.status_code == 206
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Range"] == f"bytes 0-0/{(FIXTURES / 'clip.mp4').stat().st_size}"
    assert b"".join(response.streaming_content) == (FIXTURES / "clip.mp4").read_bytes()[:1]


def test_an_expired_url_is_refused(client, avatar, monkeypatch):
    url = media_url(avatar.media.name, seconds=60)
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + 61)
    assert client.get(path_of(url)).status_code == 403


def test_a_tampered_url_is_refused(client, avatar):
    url = path_of(media_url(avatar.media.name))
    _, _, expires, signature, *key = url.split("/")
    later = f"/provider-media/{int(expires) + 3600}/{signature}/{'/'.join(key)}"
    other_file = url.replace("media.mp4", "source.mp4")
    forged = url.replace(signature, "0" * len(signature))
    for path in (later, other_file, forged):
        assert client.get(path).status_code == 403, path


def test_a_signed_url_for_a_missing_file_is_a_404_and_never_a_redirect(client, avatar):
    avatar.media.delete(save=False)
    response = client.get(path_of(media_url(avatar.media.name or f"{avatar.key_prefix}media.mp4")))
    assert response.status_code == 404


def test_in_s3_mode_providers_get_a_presigned_url_valid_for_the_configured_time(db, s3_server, settings):
    endpoint, _ = s3_server
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.PROVIDER_MEDIA_URL_SECONDS = 2 * 86400
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": "us-east-1",
                        "access_key": "testing", "secret_key": "testing", "signature_version": "s3v4"},
        },
    }
    key = default_storage.save("teams/1/renders/00000000-0000-4000-8000-000000000000/voice.wav",
                               ContentFile(b"RIFF....WAVE", name="voice.wav"))
    url = media_url(key)
    assert "X-Amz-Expires=172800" in url and not any(ch.isspace() for ch in url)
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"RIFF....WAVE"
