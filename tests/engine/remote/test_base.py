"""Rules every provider engine shares: media rules, options, URLs, callbacks, the registry."""

import pytest

from engine.errors import InputRejected
from engine.remote import PROVIDERS, CallbackRejected, Media, MediaRule, OptionSpec, Status, engine_for
from engine.remote.base import callback_reference, check_options, check_rgb, check_url, signed_callback_url

RULE = MediaRule("the training video", "source", formats=("mp4", "mov"), seconds=(10.0, 300.0),
                 max_bytes=10 << 20, edge=(360, 4096))


@pytest.mark.parametrize("media, code, words", [
    (Media(format="avi"), "provider_format", "MP4 or MOV, not AVI"),
    (Media(format="mp4", duration=4.2), "provider_duration", "between 10.0 s and 5.0 minutes; this one lasts 4.2 s"),
    (Media(format="mp4", size_bytes=11 << 20), "provider_size", "up to 10 MB; this one is 11 MB"),
    (Media(format="mp4", width=320, height=240), "provider_resolution", "between 360 and 4096 pixels"),
    (Media(format="mp4", width=5000, height=2000), "provider_resolution", "5000×2000"),
])
def test_a_media_rule_quotes_the_providers_rule(media, code, words):
    with pytest.raises(InputRejected) as caught:
        RULE.check(media, "A2E")
    assert caught.value.code == code
    assert caught.value.field == "source"
    assert words in str(caught.value)
    assert str(caught.value).startswith("A2E ")


def test_a_media_rule_accepts_what_fits_and_what_was_not_measured():
    RULE.check(Media(format="MOV", duration=10.0, size_bytes=1 << 20, width=1920, height=1080), "A2E")
    RULE.check(Media(), "A2E")


@pytest.mark.parametrize("url, code", [
    ("ftp://example.com/a.mp4", "provider_url"),
    ("/media/a.mp4", "provider_url"),
    ("https://example.com/my video.mp4", "provider_url_space"),
])
def test_urls_must_be_fetchable_without_spaces(url, code):
    with pytest.raises(InputRejected) as caught:
        check_url(url, what="The video's URL", field="source")
    assert caught.value.code == code


SPECS = (
    OptionSpec("mode", "choice", "", choices=("avatar1", "avatar2")),
    OptionSpec("strength", "int", "", minimum=50, maximum=200),
    OptionSpec("enhance", "bool", ""),
)


@pytest.mark.parametrize("options, words", [
    ({"colour": 1}, "has no option 'colour' (it offers mode, strength or enhance)"),
    ({"mode": "avatar3"}, "mode must be avatar1 or avatar2"),
    ({"strength": 20}, "between 50 and 200"),
    ({"strength": 2.5}, "a whole number"),
    ({"enhance": "yes"}, "yes or no"),
])
def test_provider_options_are_checked(options, words):
    with pytest.raises(InputRejected) as caught:
        check_options("TopView", SPECS, options)
    assert words in str(caught.value)
    assert caught.value.field == next(iter(options))


def test_good_options_pass():
    check_options("TopView", SPECS, {"mode": "avatar2", "strength": 100, "enhance": False})
    check_options("TopView", SPECS, {"mode": None})


@pytest.mark.parametrize("colour", [(0, 0), (0, 0, 256), (1.5, 2, 3), (-1, 0, 0)])
def test_background_colours_are_three_bytes(colour):
    with pytest.raises(InputRejected):
        check_rgb(colour)


def test_a_signed_callback_url_proves_itself():
    url = signed_callback_url("https://studio.example.com/hooks/provider?x=1", provider="tencent",
                              reference="render-42", secret="studio-secret")
    assert url.startswith("https://studio.example.com/hooks/provider?x=1&ref=render-42&sig=")
    assert callback_reference(url, provider="tencent", secret="studio-secret") == "render-42"


@pytest.mark.parametrize("mangle", [
    lambda u: u.replace("render-42", "render-43"),
    lambda u: u[:-2] + ("00" if not u.endswith("00") else "11"),
    lambda u: u.split("&sig=")[0],
])
def test_a_tampered_callback_url_is_rejected(mangle):
    url = signed_callback_url("https://studio.example.com/hooks/p", provider="tencent", reference="render-42",
                              secret="studio-secret")
    with pytest.raises(CallbackRejected):
        callback_reference(mangle(url), provider="tencent", secret="studio-secret")
    with pytest.raises(CallbackRejected):
        callback_reference(url, provider="tencent", secret="another-secret")


def test_the_registry_builds_each_engine_and_refuses_unknown_ones():
    assert set(PROVIDERS) == {"a2e", "tencent", "topview", "newportai"}
    engine = engine_for("newportai", {"api_key": "k-1234"})
    assert engine.label == "NewportAI"
    with pytest.raises(InputRejected, match="Unknown engine 'heygen'"):
        engine_for("heygen", {})


def test_each_engine_declares_what_it_refuses():
    for engine in PROVIDERS.values():
        caps = engine.capabilities
        assert caps.refusals, engine.name
        assert caps.drive_by_audio or caps.drive_by_text
        assert set(caps.loop_modes) <= {"reverse", "forward", "circle", "custom"}


def test_media_takes_its_format_from_the_file_name_when_none_is_given(tmp_path):
    assert Media(url="https://bucket.s3.amazonaws.com/renders/a1/voice.MP3?X-Amz-Signature=x").format == "mp3"
    assert Media(path=tmp_path / "clip.mov").format == "mov"
    assert Media(url="https://m.example.com/download/123", format=".WAV").format == "wav"
    assert Media(url="https://m.example.com/download/123").format == ""


def test_a_status_has_one_of_the_four_states():
    assert Status("queued").state == "queued"
    with pytest.raises(ValueError):
        Status("pending")
