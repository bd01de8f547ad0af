"""Direct uploads in S3 mode, over real HTTP against moto's server.

moto stores what a presigned POST sends without enforcing the policy, so these tests read the
policy itself for its conditions, and rely on the server's own check of the object (HeadObject
size and type, then its bytes) for what a bucket that ignored the policy would let through.
"""

import base64
import json

import httpx
import pytest

from api.models import Upload
from api.services import api_key_create
from avatars.models import Avatar
from studio.services import user_create
from tests import media_cache
from tests.conftest import BUCKET
from tests.factories import FIXTURES


@pytest.fixture
def s3(s3_server, settings):
    endpoint, client = s3_server
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": "us-east-1",
                "access_key": "testing", "secret_key": "testing", "signature_version": "s3v4",
            },
        },
    }
    return client


@pytest.fixture
def api(db, client):
    alice = user_create(username="alice", password="correct horse battery")
    key, secret = api_key_create(team=alice.teams.get(), user=alice, name="CI")

    def call(method, path, body=None):
        return client.generic(method, f"/api/v1{path}", json.dumps(body) if body is not None else "",
                              content_type="application/json", headers={"Authorization": f"Bearer {secret}"})

    call.team = key.team
    return call


def keys(client, under: str = "") -> list[str]:
    # moto's server keeps one bucket for the whole session: look only at this test's team.
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=under).get("Contents", [])
    return [item["Key"] for item in listed]


def upload_keys(client, api) -> list[str]:
    return keys(client, f"teams/{api.team.pk}/uploads/")


def post_file(credential: dict, content: bytes, **field_overrides) -> httpx.Response:
    fields = {**credential["fields"], **field_overrides}
    return httpx.post(credential["url"], data=fields, files={"file": ("upload", content)}, timeout=30)


def test_the_presigned_post_policy_fixes_size_type_and_key_prefix(s3, api):
    response = api("POST", "/uploads", {"kind": "video", "content_type": "video/mp4", "filename": "talk.mp4"})
    assert response.status_code == 201, response.content
    credential = response.json()
    upload = Upload.objects.get(pk=credential["file_id"])
    policy = json.loads(base64.b64decode(credential["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 5 * 1024**3] in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert ["starts-with", "$key", f"teams/{api.team.pk}/uploads/{upload.pk}/"] in conditions
    assert {"key": upload.key} in conditions
    assert credential["fields"]["key"] == upload.key
    assert credential["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert credential["url"].startswith("http://127.0.0.1:")


def test_a_file_posted_to_the_bucket_becomes_an_avatar(s3, api):
    credential = api("POST", "/uploads", {"kind": "photo", "content_type": "image/png", "filename": "me.png"}).json()
    sent = post_file(credential, media_cache.photo().read_bytes())
    assert sent.status_code == 204, sent.text
    response = api("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": credential["file_id"]})
    assert response.status_code == 201, response.content
    avatar = Avatar.objects.get()
    assert avatar.source.name in keys(s3)
    assert upload_keys(s3, api) == [], "the upload's object is removed once used"
    assert avatar.source_name == "me.png"


def test_an_object_larger_than_declared_is_deleted_and_refused(s3, api, settings):
    settings.API_UPLOAD_MAX_BYTES = {**settings.API_UPLOAD_MAX_BYTES, "photo": 10_000}
    credential = api("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()
    policy = json.loads(base64.b64decode(credential["fields"]["policy"]))
    assert ["content-length-range", 1, 10_000] in policy["conditions"]
    # Real S3 answers this POST with EntityTooLarge; moto stores it, as a misconfigured bucket might.
    assert post_file(credential, (FIXTURES / "photo.png").read_bytes()).status_code == 204
    response = api("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": credential["file_id"]})
    assert response.status_code == 413, response.content
    assert response.json()["error"] == {
        "code": "file_too_large", "field": "file",
        "message": "This file is larger than 10 KB, the most a photo or image upload may be; choose a smaller file.",
    }
    assert upload_keys(s3, api) == [] and not Avatar.objects.exists() and not Upload.objects.exists()


def test_an_object_of_another_type_than_declared_is_deleted_and_refused(s3, api):
    credential = api("POST", "/uploads", {"kind": "video", "content_type": "video/mp4"}).json()
    assert post_file(credential, (FIXTURES / "photo.png").read_bytes(), **{"Content-Type": "image/png"}).status_code == 204
    response = api("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": credential["file_id"]})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "type_mismatch"
    assert upload_keys(s3, api) == [] and not Avatar.objects.exists()


def test_bytes_that_are_not_what_the_type_says_are_deleted_and_refused(s3, api):
    credential = api("POST", "/uploads", {"kind": "video", "content_type": "video/mp4"}).json()
    assert post_file(credential, b"<!doctype html><html><body>Not found</body></html>").status_code == 204
    response = api("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": credential["file_id"]})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == "file_id"
    assert "We couldn't recognise this file's type" in response.json()["error"]["message"]
    assert upload_keys(s3, api) == []


def test_a_file_id_whose_file_never_arrived_is_refused_and_kept(s3, api):
    credential = api("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()
    response = api("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": credential["file_id"]})
    assert response.status_code == 422 and response.json()["error"]["code"] == "file_not_received"
    assert post_file(credential, media_cache.photo().read_bytes()).status_code == 204
    response = api("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": credential["file_id"]})
    assert response.status_code == 201, response.content
