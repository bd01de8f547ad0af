"""The render form offers 4K from a 4K upload: its master (kept at full size beside the
1080p media) is what the upscale rule measures."""

from renders.models import Render
from tests.factories import ready_avatar, store_fixture
from tests.renders.test_renders import RenderTestCase


class MasterResolutionTestCase(RenderTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice, kind="video", name="Footage")
        self.avatar.width, self.avatar.height = 1920, 1080
        self.avatar.save()

    def test_4k_is_refused_without_a_master(self):
        response = self.post_render(resolution="2160")
        self.assertContains(response, "4K would be blown up and blurry", status_code=400)
        self.assertFalse(Render.objects.exists())

    def test_4k_is_accepted_from_an_avatar_with_a_4k_master(self):
        self.avatar.master.name = store_fixture("clip.mp4", f"{self.avatar.key_prefix}master.mp4")
        self.avatar.master_width, self.avatar.master_height = 3840, 2160
        self.avatar.save()
        self.assertEqual(self.avatar.largest_size, (3840, 2160))
        response = self.post_render(resolution="2160")
        self.assertEqual(response.status_code, 302, getattr(response, "context", None)
                         and response.context["form"].errors)
        self.assertEqual(Render.objects.get().resolution, 2160)
        self.assertIn(self.avatar.master, self.avatar.stored_files())
