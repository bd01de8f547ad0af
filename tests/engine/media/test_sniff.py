"""engine.media.sniff: the type of a file comes from its bytes, never its name."""

from __future__ import annotations

import pytest

from engine import media


@pytest.mark.parametrize(
    "name, mime",
    [
        ("mp4", "video/mp4"),
        ("mov", "video/quicktime"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("webp", "image/webp"),
        ("wav", "audio/wav"),
        ("mp3", "audio/mpeg"),
        ("m4a", "audio/mp4"),
        ("aac", "audio/aac"),
        ("ogg", "audio/ogg"),
        ("wma", "audio/x-ms-wma"),
        ("png_as_mp4", "image/png"),
    ],
)
def test_sniff_type_reads_magic_bytes_not_the_name(files, name, mime):
    assert media.sniff_type(files[name]) == mime


def test_sniff_type_of_unknown_or_missing_files_is_none(tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"just some text, not a video at all")
    assert media.sniff_type(junk) is None
    assert media.sniff_type(tmp_path / "missing.mp4") is None


def test_extension_for_each_accepted_type():
    expected = {
        "video/mp4": "mp4", "video/quicktime": "mov", "image/jpeg": "jpg", "image/png": "png",
        "image/webp": "webp", "audio/wav": "wav", "audio/mpeg": "mp3", "audio/mp4": "m4a",
        "audio/aac": "aac", "audio/ogg": "ogg", "audio/x-ms-wma": "wma",
    }
    for mime, extension in expected.items():
        assert media.EXTENSION_FOR_TYPE[mime] == extension
        assert media.TYPE_DESCRIPTIONS[mime]
        assert media.content_type_for_name(f"teams/1/voice.{extension.upper()}") == mime


def test_content_type_of_subtitles_and_unknown_files():
    assert media.content_type_for_name("captions.srt") == "application/x-subrip"
    assert media.content_type_for_name("captions.vtt") == "text/vtt"
    assert media.content_type_for_name("library.npz") == "application/octet-stream"
    assert media.content_type_for_name("no-extension") == "application/octet-stream"
