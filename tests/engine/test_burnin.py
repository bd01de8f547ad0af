"""Burned-in captions: where and how the text lands in the frame, and in an encoded clip."""

from __future__ import annotations

import itertools

import av
import cv2
import numpy as np
import pytest
from skimage import data

from engine import burnin, media, speech
from engine.burnin import BurningWriter, CaptionPainter, CaptionStyle
from engine.captions import Cue
from engine.errors import InputRejected

LONG = (
    "Good evening, everyone. Tonight I want to talk about the work ahead of us, about the "
    "extraordinarily complicated pneumonoultramicroscopicsilicovolcanoconiosis research "
    "programme, and about the people who will do it together."
)


def astronaut(width: int, height: int) -> np.ndarray:
    """The astronaut portrait cropped to fill ``width`` × ``height``."""
    image = data.astronaut()
    scale = max(width / image.shape[1], height / image.shape[0])
    big = cv2.resize(image, (int(np.ceil(image.shape[1] * scale)), int(np.ceil(image.shape[0] * scale))))
    y, x = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y : y + height, x : x + width])


def grey(width: int, height: int, level: int = 128) -> np.ndarray:
    return np.full((height, width, 3), level, np.uint8)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 2


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    out, index = [], 0
    for value, group in itertools.groupby(flags):
        length = len(list(group))
        if value:
            out.append((index, index + length - 1))
        index += length
    return out


# -- style ----------------------------------------------------------------------------------------


def test_unknown_style_values_are_refused_with_a_sentence():
    with pytest.raises(InputRejected) as refused:
        CaptionStyle(position="left")
    assert refused.value.field == "captions" and refused.value.code == "caption_position"
    assert "“left”" in str(refused.value) and "“bottom”, “top” or “middle”" in str(refused.value)
    with pytest.raises(InputRejected, match="size"):
        burnin.caption_style(size="huge")
    with pytest.raises(InputRejected, match="look"):
        burnin.caption_style(look="shadow")
    assert burnin.caption_style(" Top ", "LARGE", "Box") == CaptionStyle("top", "large", "box")


def test_text_size_is_a_share_of_the_short_edge():
    assert CaptionStyle(size="small").font_px(1920, 1080) < CaptionStyle(size="medium").font_px(1920, 1080)
    medium = CaptionStyle(size="medium")
    assert medium.font_px(1920, 1080) == medium.font_px(1080, 1920) == 65
    assert CaptionStyle(size="large").font_px(1280, 720) == 54


# -- placement ------------------------------------------------------------------------------------


@pytest.mark.parametrize("look", burnin.LOOKS)
@pytest.mark.parametrize("position", burnin.POSITIONS)
def test_text_lands_in_its_band_and_nowhere_else(position, look):
    width, height = 1280, 720
    style = CaptionStyle(position=position, size="medium", look=look)
    cue = Cue(0.0, 2.0, ("Good evening, everyone.", "Tonight I want to talk."))
    painter = CaptionPainter([cue], width, height, style)
    frame = grey(width, height)
    mask = changed(frame, painter.paint(frame, 1.0))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom = rows[0] / height, (rows[-1] + 1) / height
    band = {"bottom": (0.70, 0.96), "top": (0.04, 0.30), "middle": (0.35, 0.65)}[position]
    assert band[0] <= top and bottom <= band[1], (top, bottom)
    if position == "bottom":
        assert bottom > 0.92  # sits on the safe margin, not floating above it
    elif position == "top":
        assert top < 0.08
    else:
        assert abs((top + bottom) / 2 - 0.5) < 0.02
    # centred, inside the side margins
    left, right = cols[0] / width, (cols[-1] + 1) / width
    assert left > 0.04 and right < 0.96 and abs((left + right) / 2 - 0.5) < 0.01


def bright_rows(painter: CaptionPainter, t: float, width: int, height: int) -> list[tuple[int, int]]:
    """Runs of frame rows holding the white text, painted on black."""
    frame = grey(width, height, 0)
    return runs((painter.paint(frame, t) > 200).all(axis=2).any(axis=1))


def test_a_long_script_is_cut_into_cues_of_one_or_two_drawn_lines():
    # Capitals only: no dots or accents float above a line, so each line is one run of rows.
    text = (
        "OVER THE TOWN WE SAW A BLUE MOON RISE, AND THEN THE WHOLE CROWD WENT HOME TO SLEEP. "
        "NEXT MORNING THE MARKET OPENED EARLY AND EVERY STALL HAD FRESH BREAD FOR SALE."
    )
    words = [speech.WordEvent(0.35 * k, 0.35 * k + 0.3, word) for k, word in enumerate(text.split())]
    width, height = 1280, 720
    style = CaptionStyle(size="large")
    duration = words[-1].end + 0.5
    cues = burnin.cues_for_burn(
        words, duration=duration, width=width, height=height, style=style, script=text
    )
    assert len(cues) >= 2
    assert " ".join(line for cue in cues for line in cue.lines) == text
    painter = CaptionPainter(cues, width, height, style)
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        drawn_lines = bright_rows(painter, (cue.start + cue.end) / 2, width, height)
        assert len(drawn_lines) == len(cue.lines), cue.lines
    assert any(len(cue.lines) == 2 for cue in cues)


@pytest.mark.parametrize("look", burnin.LOOKS)
def test_a_long_sentence_at_large_size_fits_a_portrait_frame(look):
    width, height = 1080, 1920
    style = CaptionStyle(size="large", look=look)
    words = [speech.WordEvent(0.3 * k, 0.3 * k + 0.25, word) for k, word in enumerate(LONG.split())]
    cues = burnin.cues_for_burn(words, duration=words[-1].end + 0.5, width=width, height=height, style=style)
    assert burnin.line_chars_for(LONG, width=width, height=height, style=style) < 30
    painter = CaptionPainter(cues, width, height, style)
    for cue in cues:
        assert 1 <= len(cue.lines) <= 2
        patch = painter.patch_at(cue.start)  # exactly the pixels blended into the frame
        assert patch.x >= 0.04 * width and patch.x + patch.width <= 0.96 * width, cue.lines
    # the word longer than a line is drawn smaller rather than cut off
    long_word = next(cue for cue in cues if any("pneumono" in line for line in cue.lines))
    assert painter.patch_at(long_word.start) is not None


def test_nothing_is_drawn_outside_the_cues_times():
    cues = [Cue(0.5, 1.5, ("First words.",)), Cue(2.0, 3.0, ("Second words.",))]
    painter = CaptionPainter(cues, 640, 360, CaptionStyle())
    frame = astronaut(640, 360)
    for t in (0.0, 0.49, 1.5, 1.75, 3.0, 10.0):
        assert painter.paint(frame, t) is frame
    for t in (0.5, 1.49, 2.0, 2.99):
        assert changed(frame, painter.paint(frame, t)).any()
    assert not changed(frame, frame.copy()).any()  # the caller's frame is left as it was


def test_box_and_outline_looks_differ():
    width, height = 1280, 720
    frame = grey(width, height)
    cue = [Cue(0.0, 1.0, ("Good evening, everyone.",))]
    drawn = {}
    for look in burnin.LOOKS:
        painter = CaptionPainter(cue, width, height, CaptionStyle(look=look))
        patch = painter.patch_at(0.5)
        out = painter.paint(frame, 0.5)[patch.y : patch.y + patch.height, patch.x : patch.x + patch.width]
        drawn[look] = out
    # the box darkens its whole rectangle; the outline leaves the gaps between letters alone
    box, outline = drawn["box"].max(axis=2), drawn["outline"].max(axis=2)
    assert np.mean((box < 90) | (box > 200)) > 0.85
    assert np.mean(np.abs(outline.astype(int) - 128) <= 2) > 0.3
    assert (outline > 240).any() and (box > 240).any()  # white text in both


# -- scripts and fonts ----------------------------------------------------------------------------


def test_cjk_text_is_drawn_with_real_glyphs_not_empty_boxes():
    font = burnin.font_for("你好世界")
    assert font.path.name == "wqy-microhei.ttc"
    assert all(font.has(char) for char in "你好世界こんにちは안녕")
    assert not burnin.font_for("Hello").has("\U00013000")  # an Egyptian hieroglyph
    painter = CaptionPainter([Cue(0.0, 1.0, ("你好",)), Cue(1.0, 2.0, ("世界",))], 640, 360, CaptionStyle())
    first, second = painter.patch_at(0.5), painter.patch_at(1.5)
    # a missing glyph draws the same box for every character; real glyphs differ
    assert first.alpha.shape == second.alpha.shape
    assert np.abs(first.alpha - second.alpha).mean() > 0.05
    # and they are not hollow boxes, which cross any row at most twice each
    white = (first.grey > 200) & (first.alpha > 0.9)
    assert max(len(runs(row)) for row in white) >= 6


def test_characters_no_font_has_are_left_out():
    painter = CaptionPainter([Cue(0.0, 1.0, ("\U00013000\U0010fffd",))], 640, 360, CaptionStyle())
    frame = grey(640, 360)
    assert painter.paint(frame, 0.5) is frame


@pytest.mark.parametrize(
    "text, font_name",
    [
        ("Добрый вечер всем.", "DejaVuSansCondensed-Bold.ttf"),
        ("Καλησπέρα σε όλους.", "DejaVuSansCondensed-Bold.ttf"),
        ("ערב טוב לכולם.", "DejaVuSansCondensed-Bold.ttf"),
        ("مساء الخير للجميع.", "NotoSansArabicUI-Bold.ttf"),
        ("सभी को शुभ संध्या।", "NotoSansDevanagariUI-Bold.ttf"),
        ("สวัสดีตอนเย็นทุกคน", "NotoSansThaiUI-Bold.ttf"),
        ("こんばんは、皆さん。", "wqy-microhei.ttc"),
    ],
)
def test_each_script_gets_a_font_that_has_all_its_characters(text, font_name):
    font = burnin.font_for(text)
    assert font.path.name == font_name
    assert font.missing(text) == 0


def test_a_line_mixing_scripts_draws_each_in_a_font_that_has_it():
    line = "नमस्ते YouTube 2024, दोस्तों!"
    runs = burnin.text_runs(line)
    assert "".join(run.text for run in runs) == line  # nothing dropped
    assert [run.font.path.name for run in runs] == [
        "NotoSansDevanagariUI-Bold.ttf", "DejaVuSansCondensed-Bold.ttf", "NotoSansDevanagariUI-Bold.ttf"
    ]
    assert all(run.font.missing(run.text) == 0 for run in runs)
    japanese = burnin.text_runs("こんにちは、Googleです。")
    assert [run.text for run in japanese] == ["こんにちは、", "Google", "です。"]


@pytest.mark.skipif(not burnin.raqm_available(), reason="Pillow without Raqm shaping")
def test_a_right_to_left_line_shows_its_first_words_rightmost():
    layout = burnin._CueLayout(["مرحبا بكم في Google اليوم"], width=1280, height=720, style=CaptionStyle())
    placed = {run.text.strip(): x for x, _, run, _ in layout._placed_runs(640.0, [100.0])}
    assert placed["مرحبا بكم في"] > placed["Google"] > placed["اليوم"]


@pytest.mark.skipif(not burnin.raqm_available(), reason="Pillow without Raqm shaping")
def test_arabic_letters_are_joined():
    # Joined Arabic is narrower than its letters drawn one by one in their isolated forms.
    font = burnin.font_for("مساء الخير")
    shaped = font.face(60).getlength("مساء الخير")
    isolated = sum(font.face(60).getlength(char) for char in "مساء الخير")
    assert shaped < 0.95 * isolated


def test_scripts_that_need_shaping_are_refused_without_it(monkeypatch):
    monkeypatch.setattr(burnin, "raqm_available", lambda: False)
    with pytest.raises(InputRejected) as refused:
        CaptionPainter([Cue(0.0, 1.0, ("مساء الخير",))], 640, 360, CaptionStyle())
    assert refused.value.field == "captions" and "SRT" in str(refused.value)
    CaptionPainter([Cue(0.0, 1.0, ("Good evening",))], 640, 360, CaptionStyle())  # Latin needs none


def test_script_cues_from_real_speech_fit_their_frame():
    script = (
        "Bonsoir à tous. Ce soir, je voudrais vous parler du travail qui nous attend, "
        "et des gens qui vont le faire."
    )
    spoken = speech.synthesize(script, voice="fr")
    style = CaptionStyle(size="large")
    cues = burnin.cues_for_burn(
        spoken.words, duration=spoken.duration, width=720, height=1280, style=style, script=script
    )
    assert " ".join(line for cue in cues for line in cue.lines) == script
    assert all(0 <= cue.start < cue.end <= spoken.duration for cue in cues)
    assert all(len(cue.lines) <= 2 for cue in cues)


def test_cues_made_elsewhere_are_rebroken_within_their_time():
    cues = [Cue(1.0, 7.0, (LONG,)), Cue(8.0, 9.0, ("大家晚上好。今天晚上，我想谈谈我们面前的工作。",))]
    rebroken = burnin.rebreak_cues(cues, width=1080, height=1920, style=CaptionStyle(size="large"))
    assert len(rebroken) > 2
    assert all(len(cue.lines) <= 2 for cue in rebroken)
    assert all(a.end <= b.start for a, b in itertools.pairwise(rebroken))
    english = [cue for cue in rebroken if cue.end <= 7.0]
    assert english[0].start >= 1.0 and " ".join(line for cue in english for line in cue.lines) == LONG
    chinese = [cue for cue in rebroken if cue.start >= 8.0]
    assert chinese and chinese[-1].end <= 9.0
    assert "".join(line for cue in chinese for line in cue.lines) == cues[1].text


# -- burning while encoding -----------------------------------------------------------------------


def test_the_burning_writer_puts_the_caption_in_the_encoded_frames_during_its_cue_only(tmp_path):
    width, height, fps = 640, 360, 10
    picture = astronaut(width, height)
    cue = Cue(0.5, 1.2, ("Good evening, everyone.",))
    painter = CaptionPainter([cue], width, height, CaptionStyle(look="box"))
    patch = painter.patch_at(0.6)
    yuv = media.rgb_to_frame(picture)  # already the encoder's format: must be copied, not burned
    before = yuv.to_ndarray().copy()
    rgb24 = av.VideoFrame.from_ndarray(picture, format="rgb24")  # converted by the writer's rules
    kinds = [picture, yuv, rgb24]
    path = tmp_path / "burned.mp4"
    with media.VideoWriter(path, width=width, height=height, fps=fps) as writer:
        burning = BurningWriter(writer, painter)
        for k in range(20):
            burning.write(kinds[k % 3])
    assert np.array_equal(yuv.to_ndarray(), before)  # the caller's frame (written again) is untouched
    assert burning.frames_written == 20

    box = (slice(patch.y, patch.y + patch.height), slice(patch.x, patch.x + patch.width))
    reference = picture[box].astype(int)
    with av.open(str(path)) as container:
        decoded = [media.frame_to_rgb(frame) for frame in container.decode(video=0)]
    assert len(decoded) == 20
    for k, frame in enumerate(decoded):
        difference = np.abs(frame[box].astype(int) - reference).mean()
        rest = np.delete(frame, box[0], axis=0).astype(int) - np.delete(picture, box[0], axis=0)
        outside = np.abs(rest).mean()
        assert outside < 4, (k, outside)  # the rest of the picture is the picture
        if cue.start <= k / fps < cue.end:
            assert difference > 25, (k, difference)
            assert (frame[box] > 230).all(axis=2).sum() > 200  # white text
        else:
            assert difference < 4, (k, difference)


def test_burning_an_rgb_frame_matches_painting_it():
    width, height = 640, 360
    picture = astronaut(width, height)
    painter = CaptionPainter([Cue(0.0, 1.0, ("Good evening, everyone.",))], width, height, CaptionStyle())
    painted = painter.paint(picture, 0.0)
    burned = media.frame_to_rgb(painter.paint_yuv(media.rgb_to_frame(picture), 0.0))
    plain = media.frame_to_rgb(media.rgb_to_frame(picture))
    patch = painter.patch_at(0.0)
    box = (slice(patch.y, patch.y + patch.height), slice(patch.x, patch.x + patch.width))
    # the same caption either way, up to 4:2:0 chroma at the letters' edges
    assert np.abs(burned[box].astype(int) - painted[box]).mean() < 3
    assert np.abs(burned[box].astype(int) - plain[box]).mean() > 15


def test_burning_writer_wraps_only_when_there_is_something_to_burn(tmp_path):
    words = [speech.WordEvent(0.1, 0.4, "Hello"), speech.WordEvent(0.5, 0.9, "there.")]
    with media.VideoWriter(tmp_path / "out.mp4", width=320, height=180, fps=25) as writer:
        assert burnin.burning_writer(writer, None, words=words, duration=1.0) is writer
        assert burnin.burning_writer(writer, CaptionStyle(), words=[], duration=1.0) is writer
        wrapped = burnin.burning_writer(writer, CaptionStyle(size="large"), words=words, duration=1.0)
        assert isinstance(wrapped, BurningWriter) and wrapped.fps == 25
        assert [cue.lines for cue in wrapped.painter.cues] == [("Hello there.",)]
        assert (wrapped.width, wrapped.height) == (320, 180)  # the rest is the writer's
        wrapped.write(astronaut(320, 180))
    assert writer.frames_written == 1
