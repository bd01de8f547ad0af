import json
from pathlib import Path
from urllib.parse import urlsplit

from django.core.cache import cache

from api.services import api_key_create
from tests.base import BaseTestCase


class ApiTestCase(BaseTestCase):
    """alice's team has a key; charlie's team has its own. Requests go through the test client."""

    def setUp(self):
        super().setUp()
        cache.clear()  # rate-limit windows must not carry over between tests
        self.key, self.secret = api_key_create(team=self.team, user=self.alice, name="CI")
        self.charlies_key, self.charlies_secret = api_key_create(team=self.charlies_team, user=self.charlie, name="Theirs")

    def call(self, method: str, path: str, body=None, *, secret: str | None = None, headers: dict | None = None):
        headers = {"Authorization": f"Bearer {secret or self.secret}", **(headers or {})}
        data = json.dumps(body) if body is not None else None
        with self.captureOnCommitCallbacks() as self.queued:
            return self.client.generic(
                method, f"/api/v1{path}", data or "", content_type="application/json", headers=headers
            )

    def assertError(self, response, status: int, code: str | None, field: str | None = None, says: str = ""):
        self.assertEqual(response.status_code, status, response.content[:500])
        error = response.json()["error"]
        if code is not None:
            self.assertEqual(error["code"], code, error)
        if field is not None:
            self.assertEqual(error["field"], field, error)
        self.assertIn(says, error["message"])
        return error

    def uploaded(self, path: Path, *, kind: str, content_type: str, secret: str | None = None) -> str:
        """Upload a file the way a client would (credential, then multipart POST); its file_id."""
        credential = self.call(
            "POST", "/uploads", {"kind": kind, "content_type": content_type, "filename": path.name}, secret=secret
        )
        self.assertEqual(credential.status_code, 201, credential.content)
        sent = self.send(credential.json(), path)
        self.assertEqual(sent.status_code, 204, sent.content)
        return credential.json()["file_id"]

    def send(self, credential: dict, path: Path):
        url = urlsplit(credential["url"])
        with open(path, "rb") as handle:
            return self.client.post(f"{url.path}?{url.query}", {**credential["fields"], "file": handle})

    def stored_files(self) -> list[Path]:
        return sorted(p for p in Path(self.media_root).rglob("*") if p.is_file())
