import shutil
import tempfile
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings

from studio.models import Membership, Team
from studio.services import user_create

PASSWORD = "correct horse battery"


class BaseTestCase(TestCase):
    """Personas: alice owns the team, bob edits in it, vera only views, charlie is an outsider."""

    def setUp(self):
        super().setUp()
        media_root = Path(tempfile.mkdtemp(prefix="media-"))
        self.addCleanup(shutil.rmtree, media_root, True)
        self.enterContext(override_settings(MEDIA_ROOT=media_root))
        self.media_root = media_root

        self.alice = user_create(username="alice", password=PASSWORD)
        self.team = Team.objects.get(memberships__user=self.alice)
        self.bob = user_create(username="bob", password=PASSWORD)
        Membership.objects.create(team=self.team, user=self.bob, role=Membership.Role.EDITOR)
        self.vera = user_create(username="vera", password=PASSWORD)
        Membership.objects.create(team=self.team, user=self.vera, role=Membership.Role.VIEWER)
        self.charlie = user_create(username="charlie", password=PASSWORD)
        self.charlies_team = Team.objects.get(memberships__user=self.charlie)

    def login(self, user, team: Team | None = None) -> None:
        self.client.force_login(user)
        if team is not None:
            session = self.client.session
            session["team_id"] = team.pk
            session.save()

    @staticmethod
    def upload(path: Path, name: str | None = None, content_type: str = "application/octet-stream"):
        return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type=content_type)
