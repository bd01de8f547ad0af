from pathlib import Path

from tests.base import BaseTestCase


class MediaFileTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.key = f"teams/{self.team.pk}/renders/x/video.mp4"
        path = Path(self.media_root) / self.key
        path.parent.mkdir(parents=True)
        self.content = bytes(range(256)) * 40
        path.write_bytes(self.content)

    def test_it_serves_the_whole_file_to_a_member(self):
        self.login(self.bob, self.team)
        response = self.client.get(f"/media/{self.key}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "video/mp4")
        self.assertEqual(response["Accept-Ranges"], "bytes")
        self.assertEqual(b"".join(response.streaming_content), self.content)

    def test_it_serves_a_byte_range(self):
        self.login(self.alice)
        response = self.client.get(f"/media/{self.key}", HTTP_RANGE="bytes=100-199")
        self.assertEqual(response.status_code, 206)
        self.assertEqual(response["Content-Range"], f"bytes 100-199/{len(self.content)}")
        self.assertEqual(b"".join(response.streaming_content), self.content[100:200])

    def test_it_serves_a_suffix_range(self):
        self.login(self.alice)
        response = self.client.get(f"/media/{self.key}", HTTP_RANGE="bytes=-10")
        self.assertEqual(b"".join(response.streaming_content), self.content[-10:])

    def test_it_refuses_an_unsatisfiable_range(self):
        self.login(self.alice)
        response = self.client.get(f"/media/{self.key}", HTTP_RANGE="bytes=999999-")
        self.assertEqual(response.status_code, 416)

    def test_outsider_gets_404(self):
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/media/{self.key}").status_code, 404)

    def test_it_does_not_escape_media_root(self):
        self.login(self.alice)
        response = self.client.get(f"/media/teams/{self.team.pk}/../../../etc/passwd")
        self.assertEqual(response.status_code, 404)
