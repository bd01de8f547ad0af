from pathlib import Path

from django.contrib.auth.models import Permission

from avatars.models import Avatar
from renders.models import Render
from studio.models import Membership, Team
from studio.services import team_create
from tests.base import BaseTestCase


class MediaFileTestCase(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = self.stored_avatar(self.team)
        self.render = Render.objects.create(team=self.team, avatar=self.avatar, title="Hello")
        self.key = f"{self.render.key_prefix}video.mp4"
        self.content = bytes(range(256)) * 40
        self.store(self.key, self.content)
        self.render.video.name = self.key
        self.render.save()

    def stored_avatar(self, team: Team) -> Avatar:
        avatar = Avatar.objects.create(team=team, name=f"Avatar {team.pk}", gender="female")
        avatar.source.name = f"{avatar.key_prefix}source.mp4"
        avatar.save()
        self.store(avatar.source.name, b"source of team %d" % team.pk)
        return avatar

    def store(self, key: str, content: bytes) -> None:
        path = Path(self.media_root) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

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

    def test_it_refuses_every_encoding_of_a_walk_into_another_team(self):
        # bob is in alice's team and, for now, in a second team whose files he may read;
        # none of these spellings may reach that second team's file through the first.
        other = team_create(name="Other", owner=self.charlie)
        Membership.objects.create(team=other, user=self.bob, role=Membership.Role.EDITOR)
        source = self.stored_avatar(other).source.name
        rest = source.removeprefix(f"teams/{other.pk}/")
        mine = self.team.pk
        walks = [
            f"teams/{mine}/..%2f{other.pk}/{rest}",
            f"teams/{mine}/..%2F{other.pk}/{rest}",
            f"teams/{mine}/%2e%2e/{other.pk}/{rest}",
            f"teams/{mine}/%2E%2E%2F{other.pk}/{rest}",
            f"teams/{mine}/../{other.pk}/{rest}",
            f"teams/{mine}%2f..%2f{other.pk}/{rest}",
            f"teams/{mine}/./../{other.pk}/{rest}",
            f"teams//{other.pk}/{rest}",
            f"teams/0{other.pk}/{rest}",
            f"teams/{other.pk}/{rest.upper()}",
        ]
        self.login(self.bob, self.team)
        self.assertEqual(self.client.get(f"/media/{source}").status_code, 200)
        for walk in walks:
            with self.subTest(walk=walk):
                self.assertEqual(self.client.get(f"/media/{walk}").status_code, 404)

        Membership.objects.filter(team=other, user=self.bob).delete()
        self.assertEqual(self.client.get(f"/media/{source}").status_code, 404)
        for walk in walks:
            with self.subTest(walk=walk, removed=True):
                self.assertEqual(self.client.get(f"/media/{walk}").status_code, 404)

    def test_a_name_storage_made_unique_is_still_served(self):
        # A leftover video.mp4 from a killed attempt makes storage save the next one as video_AbC12xY.mp4.
        key = f"{self.render.key_prefix}video_AbC12xY.mp4"
        self.store(key, self.content)
        self.render.video.name = key
        self.render.save()
        self.login(self.alice)
        self.assertEqual(self.client.get(f"/media/{key}").status_code, 200)

    def test_a_file_the_object_no_longer_holds_is_404(self):
        # A leftover file under a real object's folder is not served: only the object's own files are.
        self.store(f"{self.render.key_prefix}old.mp4", b"stale")
        self.login(self.alice)
        self.assertEqual(self.client.get(f"/media/{self.render.key_prefix}old.mp4").status_code, 404)

    def test_a_key_under_the_wrong_team_is_404(self):
        other = team_create(name="Other", owner=self.alice)
        moved = self.key.replace(f"teams/{self.team.pk}/", f"teams/{other.pk}/")
        self.store(moved, self.content)
        self.login(self.alice)
        self.assertEqual(self.client.get(f"/media/{moved}").status_code, 404)

    def test_malformed_paths_are_404_not_500(self):
        self.login(self.alice)
        for path in ["%00", "x%00.mp4", "%ff%fe", "video.mp4%00", "..", "%2e", "con", "a" * 2000]:
            with self.subTest(path=path):
                response = self.client.get(f"/media/teams/{self.team.pk}/{path}")
                self.assertEqual(response.status_code, 404)

    def test_staff_with_view_permission_read_any_team(self):
        self.charlie.is_staff = True
        self.charlie.save()
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/media/{self.key}").status_code, 404)
        self.charlie.user_permissions.add(Permission.objects.get(codename="view_render"))
        self.assertEqual(self.client.get(f"/media/{self.key}").status_code, 200)
        # The permission is per kind of object: renders' does not open avatars' files.
        self.assertEqual(self.client.get(f"/media/{self.avatar.source.name}").status_code, 404)

    def test_a_permission_without_staff_status_is_not_enough(self):
        self.charlie.user_permissions.add(Permission.objects.get(codename="view_render"))
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/media/{self.key}").status_code, 404)


class DownloadTestCase(BaseTestCase):
    def test_it_saves_a_render_under_its_title(self):
        from tests.factories import finished_render, ready_avatar

        avatar = ready_avatar(team=self.team, user=self.alice)
        for title, header in [
            ("Spring launch", "attachment; filename=\"Spring launch.mp4\""),
            ("Café / “Été” 2026", "attachment; filename*=utf-8''Caf%C3%A9%20%E2%80%9C%C3%89t%C3%A9%E2%80%9D%202026.mp4"),
            ('..\\a:b*?"<>|', 'attachment; filename="a b.mp4"'),
        ]:
            with self.subTest(title=title):
                job = finished_render(avatar=avatar, user=self.alice, title=title)
                self.login(self.bob, self.team)
                page = self.client.get(f"/renders/{job.pk}/")
                self.assertContains(page, f'href="/media/{job.video.name}?download"')
                response = self.client.get(f"/media/{job.video.name}?download")
                self.assertEqual(response["Content-Disposition"], header)
                ranged = self.client.get(f"/media/{job.video.name}?download", HTTP_RANGE="bytes=0-9")
                self.assertEqual((ranged.status_code, ranged["Content-Disposition"]), (206, header))
                # Played in the page, the same file stays inline.
                self.assertNotIn("attachment", self.client.get(f"/media/{job.video.name}")["Content-Disposition"])
