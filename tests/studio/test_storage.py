from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from storages.backends.s3 import S3Storage

from studio.storage import download_url
from tests.conftest import BUCKET

KEY = "teams/1/renders/0b7e6b4e-6c55-4c8e-8f55-1a1f0f7f0c11/video.mp4"


@pytest.fixture
def s3_storage(s3_server, settings):
    endpoint, client = s3_server
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    client.put_object(Bucket=BUCKET, Key=KEY, Body=b"\x00" * 64, ContentType="video/mp4")
    return S3Storage(
        bucket_name=BUCKET, endpoint_url=endpoint, region_name="us-east-1",
        access_key="testing", secret_key="testing", signature_version=settings.AWS_S3_SIGNATURE_VERSION,
        querystring_expire=settings.AWS_QUERYSTRING_EXPIRE,
    )


def test_presigned_urls_are_sigv4(s3_storage):
    url = s3_storage.url(KEY)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert not {"AWSAccessKeyId", "Signature", "Expires"} & set(query)
    response = httpx.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"


def test_the_download_url_saves_under_the_given_name(s3_storage):
    url = download_url(SimpleNamespace(storage=s3_storage, name=KEY), "Café launch.mp4")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''Caf%C3%A9%20launch.mp4"
