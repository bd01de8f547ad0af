"""S3 mode, the studio's own forms: the browser sends files straight to the bucket (moto's
server over real HTTP), then the form names them by file_id."""

import pytest

from avatars.models import Avatar
from renders.models import Render
from studio.services import user_create
from tests import media_cache
from tests.api.test_s3_uploads import keys, post_file, s3  # noqa: F401 (the fixture)
from tests.factories import ready_avatar


@pytest.fixture
def alice(db, client):
    user = user_create(username="alice", password="correct horse battery")
    client.force_login(user)
    return user


def credential(client, **fields):
    response = client.post("/uploads/direct/", fields)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.slow
def test_a_video_sent_to_the_bucket_becomes_an_avatar(s3, alice, client):  # noqa: F811
    sent = credential(client, kind="photo", content_type="image/png", filename="me.png")
    assert post_file(sent, media_cache.photo().read_bytes()).status_code == 204
    response = client.post("/avatars/new/", {"name": "Host", "gender": "male", "background": "none",
                                             "consent": "on", "source_file_id": sent["file_id"]})
    avatar = Avatar.objects.get()
    assert response.status_code == 302, response.content
    assert avatar.source.name in keys(s3) and avatar.source_name == "me.png"
    assert not [k for k in keys(s3, f"teams/{avatar.team_id}/uploads/")], "the upload's object is removed once used"


@pytest.mark.slow
def test_a_form_error_keeps_the_upload_for_the_next_try(s3, alice, client):  # noqa: F811
    sent = credential(client, kind="photo", content_type="image/png", filename="me.png")
    post_file(sent, media_cache.photo().read_bytes())
    refused = client.post("/avatars/new/", {"name": "Host", "gender": "male", "background": "none",
                                            "source_file_id": sent["file_id"]})  # no consent
    assert refused.status_code == 400
    assert not Avatar.objects.exists()
    again = client.post("/avatars/new/", {"name": "Host", "gender": "male", "background": "none",
                                          "consent": "on", "source_file_id": sent["file_id"]})
    assert again.status_code == 302 and Avatar.objects.count() == 1


@pytest.mark.slow
def test_a_used_or_foreign_file_id_is_a_sentence_on_its_field(s3, alice, client):  # noqa: F811
    avatar = ready_avatar(team=alice.teams.get(), user=alice, kind="video")
    sent = credential(client, kind="audio", content_type="audio/wav", filename="voice.wav")
    post_file(sent, media_cache.audio(3.0, "wav").read_bytes())
    form = {"avatar": avatar.pk, "title": "Voice", "driver": "audio", "speed": "1.0", "volume": "0",
            "loop_mode": "reverse", "audio_file_id": sent["file_id"]}
    assert client.post("/renders/new/", form).status_code == 302
    assert Render.objects.get().audio_duration == pytest.approx(3.0, abs=0.05)
    reused = client.post("/renders/new/", form)
    assert reused.status_code == 400
    assert "already used; upload the file again" in reused.context["form"].errors["audio"][0]


def test_local_mode_has_no_direct_uploads(alice, client):
    assert client.post("/uploads/direct/", {"kind": "photo", "content_type": "image/png"}).status_code == 404
    assert b"data-direct-upload" not in client.get("/avatars/new/").content


def test_s3_mode_forms_upload_straight_to_the_bucket(s3, alice, client):  # noqa: F811
    assert b'data-direct-upload="/uploads/direct/"' in client.get("/avatars/new/").content
    refused = client.post("/uploads/direct/", {"kind": "photo", "content_type": "text/html"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "content_type"
