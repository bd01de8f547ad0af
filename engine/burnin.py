"""Burned-in captions: the caption cues drawn into the video frames.

- ``CaptionStyle(position=, size=, look=)`` and ``caption_style(position, size, look)``, which
  refuses unknown values with a sentence (``InputRejected``, field ``captions``).
- ``cues_for_burn(words, *, duration, width, height, style, script=None)``: cues whose lines
  fit the frame's width at the style's text size, two lines at most (``captions.build_cues``
  with a line length measured from the font); ``rebreak_cues(cues, …)`` does the same for
  cues made elsewhere (an aligned transcript).
- ``CaptionPainter(cues, width, height, style)``: ``paint(rgb, t)`` returns the frame with
  the cue shown at ``t`` seconds (the frame itself between cues).
- ``BurningWriter(writer, painter)``: a ``media.VideoWriter`` stand-in whose ``write`` burns
  the caption for frame ``index / fps`` into RGB arrays and decoded ``av.VideoFrame``s alike;
  ``burning_writer(writer, style, words=, duration=, script=)`` (or ``cues=``) builds it for
  the writer's size and rate, or hands ``writer`` back when there is nothing to burn.

Each cue's text is drawn once, anti-aliased, into a small grey patch with its alpha; a frame
then costs one blend of that patch's rectangle (in YUV for decoded frames, so the rest of
the picture is never converted). Text is white, over a dark outline and soft shadow
(``outline``) or a translucent rounded box (``box``), centred, kept 5 % of the frame
inside its edges.

Fonts are Debian's (``make fonts``, about 20 MB): DejaVu Sans Condensed Bold for Latin,
Greek, Cyrillic, Hebrew, Armenian and Georgian; Noto Sans UI Bold for Arabic, Thai, Lao,
Khmer, Myanmar, Sinhala and the Indic scripts (Devanagari, Bengali, Gurmukhi, Gujarati,
Oriya, Tamil, Telugu, Kannada, Malayalam); WenQuanYi Micro Hei for Chinese, Japanese and
Korean (Chinese glyph forms for kanji; it has no bold, so it is thickened). Each letter is
drawn in its script's font, so a line mixing scripts ("नमस्ते YouTube") is cut into runs,
one per font; whether a font has a character is read from the glyph it draws, which is
the font's .notdef glyph when it has none. Characters no font has are left out rather
than drawn as empty boxes. Runs of a right-to-left line are placed right to left.

Complex scripts (Arabic joining, right-to-left order, Indic conjuncts and vowel signs) need
Pillow's Raqm layout: the Pillow wheels bundle Raqm and HarfBuzz and load FriBiDi
(Debian libfribidi0, which ``make fonts`` installs) at run time. Without it Pillow draws
characters one by one, unjoined and left to right, which is unreadable for Arabic, Hebrew
and the Indic scripts, so ``CaptionPainter`` then refuses such text (``InputRejected``)
rather than burn it wrongly; ``raqm_available()`` says which case holds.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from . import captions
from .captions import Cue
from .errors import EngineError, InputRejected
from .media.colour import BT709, RANGE_MPEG, rgb_to_frame, to_encoder_frame
from .speech.synthesis import WordEvent

POSITIONS = ("bottom", "top", "middle")
SIZES = ("small", "medium", "large")
LOOKS = ("outline", "box")

# The font's pixel size as a share of the frame's short edge: 49/65/81 px on 1080p, the
# range broadcast and streaming captions use for a screen across a room or a phone in hand.
SIZE_SHARE = {"small": 0.045, "medium": 0.06, "large": 0.075}
# Title-safe margins: text stays this share of the frame inside each edge.
EDGE_MARGIN = 0.05
# A line may hold at most as many columns as a widescreen caption line, however small the
# text: longer lines are hard to read in the time a cue is shown.
MAX_LINE_CHARS = captions.WIDESCREEN_LINE_CHARS
# Lines are measured with this slack over the text's average column width, so a line of
# wide letters rarely needs the patch shrunk to fit (``_CueLayout`` shrinks it if it does).
_WIDTH_SLACK = 1.08

# Look, in shares of the font size.
_OUTLINE = 0.06  # thick enough to read white text on white
_SHADOW_OFFSET = 0.04
_SHADOW_BLUR = 0.05
_SHADOW_ALPHA = 0.55
_EMBOLDEN = 0.02
_BOX_ALPHA = 0.62
_BOX_PAD_X = 0.35
_BOX_PAD_Y = 0.10
_BOX_RADIUS = 0.22


@dataclass(frozen=True)
class CaptionStyle:
    position: str = "bottom"
    size: str = "medium"
    look: str = "outline"

    def __post_init__(self) -> None:
        _check("position", self.position, POSITIONS)
        _check("size", self.size, SIZES)
        _check("look", self.look, LOOKS)

    def font_px(self, width: int, height: int) -> int:
        """The font's pixel size on a frame of ``width`` × ``height``."""
        return max(10, round(SIZE_SHARE[self.size] * min(width, height)))


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        choices = ", ".join(f"“{a}”" for a in allowed[:-1]) + f" or “{allowed[-1]}”"
        raise InputRejected(
            f"Caption {name} “{value}” is not one we offer: choose {choices}.",
            field="captions",
            code=f"caption_{name}",
        )


def caption_style(position: str = "bottom", size: str = "medium", look: str = "outline") -> CaptionStyle:
    """A style from form or CLI values (case and spaces forgiven); unknown values refused."""
    return CaptionStyle(
        position=str(position).strip().lower(), size=str(size).strip().lower(), look=str(look).strip().lower()
    )


# ------------------------------------------------------------------------------------ fonts

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
_DEJAVU = ("dejavu/DejaVuSansCondensed-Bold.ttf", "dejavu/DejaVuSans-Bold.ttf")
_CJK = ("wqy/wqy-microhei.ttc",)
# Unicode character-name prefixes → the fonts drawn for that script, best first.
_SCRIPT_FONTS = {
    "ARABIC": ("noto/NotoSansArabicUI-Bold.ttf",),
    "DEVANAGARI": ("noto/NotoSansDevanagariUI-Bold.ttf",),
    "BENGALI": ("noto/NotoSansBengaliUI-Bold.ttf",),
    "GURMUKHI": ("noto/NotoSansGurmukhiUI-Bold.ttf",),
    "GUJARATI": ("noto/NotoSansGujaratiUI-Bold.ttf",),
    "ORIYA": ("noto/NotoSansOriyaUI-Bold.ttf",),
    "TAMIL": ("noto/NotoSansTamilUI-Bold.ttf",),
    "TELUGU": ("noto/NotoSansTeluguUI-Bold.ttf",),
    "KANNADA": ("noto/NotoSansKannadaUI-Bold.ttf",),
    "MALAYALAM": ("noto/NotoSansMalayalamUI-Bold.ttf",),
    "SINHALA": ("noto/NotoSansSinhalaUI-Bold.ttf",),
    "THAI": ("noto/NotoSansThaiUI-Bold.ttf",),
    "LAO": ("noto/NotoSansLaoUI-Bold.ttf",),
    "KHMER": ("noto/NotoSansKhmerUI-Bold.ttf",),
    "MYANMAR": ("noto/NotoSansMyanmarUI-Bold.ttf",),
    "CJK": _CJK, "HIRAGANA": _CJK, "KATAKANA": _CJK, "HANGUL": _CJK, "BOPOMOFO": _CJK,
    "IDEOGRAPHIC": _CJK, "HALFWIDTH": _CJK, "FULLWIDTH": _CJK,
}
# Scripts drawn wrongly without Raqm's shaping and bidirectional ordering.
_NEEDS_SHAPING = {
    "ARABIC", "HEBREW", "SYRIAC", "THAANA", "NKO", "DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI",
    "ORIYA", "TAMIL", "TELUGU", "KANNADA", "MALAYALAM", "SINHALA", "KHMER", "MYANMAR",
}
# A code point no font maps: what it draws is the font's "missing glyph" (.notdef).
_UNMAPPED = "\U0010fffd"


def raqm_available() -> bool:
    """Whether Pillow shapes text (Arabic joining, right-to-left, Indic conjuncts)."""
    return bool(features.check("raqm"))


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else ""


_NO_GLYPH_CATEGORIES = ("Cc", "Cf", "Cs", "Mn", "Mc", "Me", "Zs", "Zl", "Zp")


def _counts_for_coverage(char: str) -> bool:
    # Spaces, controls, joiners and combining marks have no glyph of their own to check
    # (a mark's font is its base letter's).
    return not (char.isspace() or unicodedata.category(char) in _NO_GLYPH_CATEGORIES)


@functools.lru_cache(maxsize=None)
def _installed(relative: str) -> Path | None:
    for folder in FONT_DIRS:
        path = folder / relative
        if path.is_file():
            return path
    return None


class _Font:
    """One font file: which characters it has, and its faces at each size."""

    def __init__(self, path: Path):
        self.path = path
        # The basic layout maps each character straight to its glyph (no shaping), so a
        # character the font lacks draws exactly the .notdef glyph.
        self._probe = ImageFont.truetype(str(path), 24, layout_engine=ImageFont.Layout.BASIC)
        self._notdef = self._signature(_UNMAPPED)
        self._has: dict[str, bool] = {}

    def _signature(self, char: str) -> tuple:
        mask = self._probe.getmask(char)
        return mask.size, bytes(mask)

    def has(self, char: str) -> bool:
        known = self._has.get(char)
        if known is None:
            known = not _counts_for_coverage(char) or self._signature(char) != self._notdef
            self._has[char] = known
        return known

    def missing(self, text: str) -> int:
        return sum(1 for char in set(text) if not self.has(char))

    @functools.lru_cache(maxsize=64)
    def face(self, px: int) -> ImageFont.FreeTypeFont:
        engine = ImageFont.Layout.RAQM if raqm_available() else ImageFont.Layout.BASIC
        return ImageFont.truetype(str(self.path), px, layout_engine=engine)


@functools.lru_cache(maxsize=None)
def _font(relative: str) -> _Font | None:
    path = _installed(relative)
    return _Font(path) if path else None


def _all_fonts() -> list[_Font]:
    names = list(_DEJAVU) + [name for names in _SCRIPT_FONTS.values() for name in names]
    fonts = [_font(name) for name in dict.fromkeys(names)]
    return [font for font in fonts if font]


@functools.lru_cache(maxsize=8192)
def _letter_font(char: str) -> _Font | None:
    """The font for a letter: its script's own first, then DejaVu, then any that has it."""
    names = _SCRIPT_FONTS.get(_script(char), ()) + _DEJAVU
    for font in [_font(name) for name in names] + _all_fonts():
        if font and font.has(char):
            return font
    return None


@dataclass(frozen=True)
class _Run:
    font: _Font
    text: str


def text_runs(text: str) -> list[_Run]:
    """``text`` cut where its font changes, in reading order.

    Letters go to their script's font (a Hindi sentence with an English name is drawn in
    two fonts, neither missing a glyph); marks stay with their letter, and spaces, digits
    and punctuation with the letter before them (else after them) when its font has them.
    Characters no font has are left out: an empty box tells a viewer nothing.
    """
    if not _all_fonts():
        raise EngineError("No caption font is installed: run `make fonts` (Debian fonts-dejavu-core).")
    fonts: list[_Font | None] = [None] * len(text)
    decided = [False] * len(text)
    previous: _Font | None = None
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category[0] == "L":
            fonts[index], decided[index] = _letter_font(char), True
        elif category[0] == "M" or (previous is not None and previous.has(char)):
            fonts[index] = previous if previous is not None and previous.has(char) else None
            decided[index] = True
        if decided[index] and fonts[index] is not None:
            previous = fonts[index]
    following: _Font | None = None
    for index in range(len(text) - 1, -1, -1):
        if decided[index]:
            following = fonts[index] or following
            continue
        char = text[index]
        fonts[index] = following if following is not None and following.has(char) else _letter_font(char)
    runs: list[_Run] = []
    for char, font in zip(text, fonts):
        if font is None or not font.has(char):
            continue
        if runs and runs[-1].font is font:
            runs[-1] = _Run(font, runs[-1].text + char)
        else:
            runs.append(_Run(font, char))
    return runs


def font_for(text: str) -> _Font:
    """The font that draws most of ``text``'s characters."""
    counts: dict[_Font, int] = {}
    for run in text_runs(text):
        counts[run.font] = counts.get(run.font, 0) + sum(_counts_for_coverage(char) for char in run.text)
    if not counts:
        return _all_fonts()[0]
    return max(counts, key=counts.get)


def _right_to_left(text: str) -> bool:
    """Whether a line reads right to left: its first strong letter is Arabic, Hebrew…"""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def _direction(text: str) -> dict:
    # Each run is laid out in the line's direction, so a space between an English and an
    # Arabic run lands between them. Only Raqm knows directions.
    if not raqm_available():
        return {}
    return {"direction": "rtl" if _right_to_left(text) else "ltr"}


def _line_width(runs: Sequence[_Run], px: int, direction: dict) -> float:
    return sum(run.font.face(px).getlength(run.text, **direction) for run in runs)


def needs_shaping(text: str) -> bool:
    return any(_script(char) in _NEEDS_SHAPING for char in text)


# -------------------------------------------------------------------------------- line length


def _usable_width(width: int, font_px: int, style: CaptionStyle) -> float:
    inner = width * (1 - 2 * EDGE_MARGIN)
    if style.look == "box":
        inner -= 2 * _BOX_PAD_X * font_px
    return max(1.0, inner)


def line_chars_for(text: str, *, width: int, height: int, style: CaptionStyle) -> int:
    """The longest line, in ``captions`` columns, that ``text``'s font fits across the frame.

    Measured on the text itself, so capitals, wide scripts and full-width characters each
    get the room they take; at most ``MAX_LINE_CHARS``.
    """
    text = " ".join(text.split())
    columns = captions.display_width(text)
    if not columns:
        return MAX_LINE_CHARS
    px = style.font_px(width, height)
    per_column = _line_width(text_runs(text), px, _direction(text)) / columns
    if per_column <= 0:
        return MAX_LINE_CHARS
    fit = int(_usable_width(width, px, style) / (per_column * _WIDTH_SLACK))
    return max(1, min(MAX_LINE_CHARS, fit))


def cues_for_burn(
    words: Sequence[WordEvent],
    *,
    duration: float,
    width: int,
    height: int,
    style: CaptionStyle,
    script: str | None = None,
) -> list[Cue]:
    """Caption cues (as ``captions.build_cues``) broken for lines drawn at ``style``'s size."""
    text = captions.spoken_text(script) if script is not None else " ".join(w.text for w in words)
    limit = line_chars_for(text, width=width, height=height, style=style)
    return captions.build_cues(words, duration=duration, script=script, max_line_chars=limit)


def rebreak_cues(cues: Sequence[Cue], *, width: int, height: int, style: CaptionStyle) -> list[Cue]:
    """Cues made elsewhere (an aligned transcript), each re-broken to fit; one too long for
    two lines is split in time, its words sharing its span by their length."""
    out: list[Cue] = []
    for cue in cues:
        text = " ".join(cue.text.split())
        if not text or cue.end <= cue.start:
            continue
        limit = line_chars_for(text, width=width, height=height, style=style)
        chunks = text.split(" ")
        lengths = [captions.display_width(chunk) + 1 for chunk in chunks]
        step = (cue.end - cue.start) / sum(lengths)
        words, at = [], cue.start
        for chunk, length in zip(chunks, lengths):
            words.append(WordEvent(at, at + step * (length - 1), chunk))
            at += step * length
        # The cue's text as the "script": captions then splits Chinese and Japanese between
        # characters and shares each chunk's time among them.
        for piece in captions.build_cues(words, duration=cue.end, script=text, max_line_chars=limit):
            start = max(piece.start, cue.start, out[-1].end if out else 0.0)
            if piece.end > start:
                out.append(Cue(start, piece.end, piece.lines))
    return out


# ------------------------------------------------------------------------------------ patches


class _Weights:
    """Blend weights for one plane, in 1/256ths: ``out = (src·inverse + premultiplied) >> 8``.

    Integer arithmetic on the patch rectangle only: ~0.3 ms for a two-line 1080p caption.
    ``premultiplied`` already holds the +128 that rounds the shift.
    """

    def __init__(self, alpha: np.ndarray, colour: np.ndarray, channels: int = 1):
        weight = np.round(alpha * 256).astype(np.uint16)
        self.inverse = (256 - weight).astype(np.uint16)
        self.premultiplied = (colour.astype(np.uint16) * weight + 128).astype(np.uint16)
        if channels > 1:  # rows of interleaved pixels: r g b r g b …
            self.inverse = np.repeat(self.inverse, channels, axis=1)
            self.premultiplied = np.repeat(self.premultiplied, channels, axis=1)

    def apply(self, region: np.ndarray) -> None:
        """Blend into ``region`` in place: a view of the frame whose rows are ``channels``
        interleaved pixels (each row contiguous, so numpy runs its fast loops)."""
        mixed = region.astype(np.uint16)
        mixed *= self.inverse
        mixed += self.premultiplied
        mixed >>= 8
        region[...] = mixed


@dataclass(frozen=True)
class _Patch:
    """A cue drawn once, at (x, y) in the frame; even-aligned, for 4:2:0 chroma."""

    x: int
    y: int
    alpha: np.ndarray  # float32 (h, w), 0..1
    grey: np.ndarray  # uint8 (h, w): the colour where alpha > 0 (straight, not premultiplied)

    @property
    def height(self) -> int:
        return self.alpha.shape[0]

    @property
    def width(self) -> int:
        return self.alpha.shape[1]

    @functools.cached_property
    def rgb_weights(self) -> _Weights:
        return _Weights(self.alpha, self.grey, channels=3)

    @functools.cached_property
    def yuv_weights(self) -> tuple[_Weights, _Weights]:
        """Luma and chroma, BT.709 limited range: grey is Y 16–235 and neutral chroma; chroma
        takes each 2×2 block's mean alpha, the box filter 4:2:0 stands for."""
        luma = np.round(16 + self.grey.astype(np.float32) * (219 / 255))
        h, w = self.alpha.shape
        chroma_alpha = self.alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return _Weights(self.alpha, luma), _Weights(chroma_alpha, np.full(chroma_alpha.shape, 128.0))


def _compose(layers: Sequence[tuple[float, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Grey layers (level 0..1, coverage 0..1) stacked bottom to top → (alpha, premultiplied)."""
    alpha = np.zeros_like(layers[0][1])
    premultiplied = np.zeros_like(layers[0][1])
    for level, coverage in layers:
        premultiplied = level * coverage + premultiplied * (1 - coverage)
        alpha = coverage + alpha * (1 - coverage)
    return alpha, premultiplied


class _CueLayout:
    """Where a cue's lines go on the frame and how they look, drawn into one patch."""

    def __init__(self, lines: Sequence[str], *, width: int, height: int, style: CaptionStyle):
        self.lines = [(runs, _direction(line)) for line in lines if (runs := text_runs(line.strip()))]
        px = style.font_px(width, height)
        usable = _usable_width(width, px, style)
        widest = max((_line_width(runs, px, direction) for runs, direction in self.lines), default=0.0)
        if widest > usable:  # a line of unusually wide letters, or one word longer than a line
            px = max(8, int(px * usable / widest))
        self.px, self.style = px, style
        self.frame_width, self.frame_height = width, height

    def _embolden(self, font: _Font) -> int:
        # Fonts without a bold face (the CJK one) are thickened to match the others' weight.
        return 0 if "Bold" in font.path.name else max(1, round(_EMBOLDEN * self.px))

    def _placed_runs(self, centre_x: float, baselines: Sequence[float]):
        """(x, baseline, run, direction) of every run, each line centred on ``centre_x``."""
        for (runs, direction), baseline in zip(self.lines, baselines):
            widths = [run.font.face(self.px).getlength(run.text, **direction) for run in runs]
            order = list(zip(runs, widths))
            if direction.get("direction") == "rtl":
                order.reverse()  # runs are in reading order; a right-to-left line shows the first rightmost
            x = centre_x - sum(widths) / 2
            for run, run_width in order:
                yield x, baseline, run, direction
                x += run_width

    def patch(self) -> _Patch | None:
        if not self.lines:
            return None
        px, style = self.px, self.style
        fonts = {run.font for runs, _ in self.lines for run in runs}
        ascent = max(font.face(px).getmetrics()[0] for font in fonts)
        descent = max(font.face(px).getmetrics()[1] for font in fonts)
        pitch = ascent + descent
        pad_y = round(_BOX_PAD_Y * px) if style.look == "box" else 0
        block_height = pitch * len(self.lines) + 2 * pad_y
        margin = EDGE_MARGIN * self.frame_height
        if style.position == "bottom":
            top = self.frame_height - margin - block_height
        elif style.position == "top":
            top = margin
        else:
            top = (self.frame_height - block_height) / 2
        # Draw on a canvas with room for strokes, shadows and marks above/below the metrics.
        spare = int(px * 0.6) + 4
        widest = max(_line_width(runs, px, direction) for runs, direction in self.lines)
        canvas_w = min(int(widest) + 2 * spare, self.frame_width + 2 * spare)
        canvas_h = block_height + 2 * spare
        origin_x = (self.frame_width - canvas_w) // 2  # the canvas's left edge on the frame
        centre_x = self.frame_width / 2 - origin_x
        baselines = [spare + pad_y + k * pitch + ascent for k in range(len(self.lines))]
        placed = list(self._placed_runs(centre_x, baselines))

        def mask(outline: int = 0) -> np.ndarray:
            image = Image.new("L", (canvas_w, canvas_h), 0)
            draw = ImageDraw.Draw(image)
            for x, baseline, run, direction in placed:
                stroke = outline + self._embolden(run.font)
                draw.text((x, baseline), run.text, font=run.font.face(px), fill=255, anchor="ls",
                          stroke_width=stroke, stroke_fill=255, **direction)
            return np.asarray(image, dtype=np.float32) / 255.0

        fill = mask()
        if style.look == "outline":
            stroked = mask(outline=max(2, round(_OUTLINE * px)))
            blur = ImageFilter.GaussianBlur(max(1.0, _SHADOW_BLUR * px))
            offset = max(1, round(_SHADOW_OFFSET * px))
            shadow_image = Image.new("L", (canvas_w, canvas_h), 0)
            stroked_image = Image.fromarray(np.uint8(np.round(stroked * 255)))
            shadow_image.paste(stroked_image.filter(blur), (offset, offset))
            shadow = np.asarray(shadow_image, dtype=np.float32) / 255.0 * _SHADOW_ALPHA
            alpha, premultiplied = _compose([(0.0, shadow), (0.0, stroked), (1.0, fill)])
        else:
            box_image = Image.new("L", (canvas_w, canvas_h), 0)
            draw = ImageDraw.Draw(box_image)
            pad_x, radius = round(_BOX_PAD_X * px), round(_BOX_RADIUS * px)
            for k, baseline in enumerate(baselines):
                inks = [
                    draw.textbbox((x, base), run.text, font=run.font.face(px), anchor="ls", **direction)
                    for x, base, run, direction in placed
                    if base == baseline
                ]
                left, right = min(ink[0] for ink in inks), max(ink[2] for ink in inks)
                top_edge = min(min(ink[1] for ink in inks), baseline - ascent) - (pad_y if k == 0 else 0)
                bottom_edge = max(max(ink[3] for ink in inks), baseline + descent)
                bottom_edge += pad_y if k == len(baselines) - 1 else 0
                corners = (left - pad_x, top_edge, right + pad_x, bottom_edge)
                draw.rounded_rectangle(corners, radius=radius, fill=255)
            box = np.asarray(box_image, dtype=np.float32) / 255.0 * _BOX_ALPHA
            alpha, premultiplied = _compose([(0.0, box), (1.0, fill)])
        return self._placed(alpha, premultiplied, origin_x=origin_x, origin_y=round(top) - spare)

    def _placed(
        self, alpha: np.ndarray, premultiplied: np.ndarray, *, origin_x: int, origin_y: int
    ) -> _Patch | None:
        """Crop to what is drawn and to the frame, aligned to even pixels for 4:2:0 chroma."""
        rows = np.flatnonzero(alpha.max(axis=1) > 1 / 512)
        cols = np.flatnonzero(alpha.max(axis=0) > 1 / 512)
        if not len(rows):
            return None
        y0 = max(rows[0] + origin_y, 0) // 2 * 2
        x0 = max(cols[0] + origin_x, 0) // 2 * 2
        y1 = min(rows[-1] + 1 + origin_y, self.frame_height)
        x1 = min(cols[-1] + 1 + origin_x, self.frame_width)
        y1 = min(y1 + (y1 - y0) % 2, self.frame_height // 2 * 2)
        x1 = min(x1 + (x1 - x0) % 2, self.frame_width // 2 * 2)
        if y1 <= y0 or x1 <= x0:
            return None
        sub = (slice(y0 - origin_y, y1 - origin_y), slice(x0 - origin_x, x1 - origin_x))
        a = np.ascontiguousarray(alpha[sub], dtype=np.float32)
        pre = premultiplied[sub]
        grey = np.where(a > 0, pre / np.maximum(a, 1e-6), 0.0)
        grey_u8 = np.clip(np.round(grey * 255), 0, 255).astype(np.uint8)
        return _Patch(int(x0), int(y0), a, grey_u8)


class CaptionPainter:
    """Draws the cue active at a time into frames of ``width`` × ``height``."""

    def __init__(self, cues: Sequence[Cue], width: int, height: int, style: CaptionStyle):
        self.width, self.height, self.style = int(width), int(height), style
        self.cues = sorted((cue for cue in cues if cue.end > cue.start and cue.lines), key=lambda c: c.start)
        if not raqm_available():
            for cue in self.cues:
                if needs_shaping(cue.text):
                    raise InputRejected(
                        "Burned-in captions for this script need text shaping, which this server's "
                        "Pillow lacks; turn burned-in captions off (the SRT and WebVTT files still work).",
                        field="captions",
                        code="caption_shaping",
                    )
        self._starts = np.array([cue.start for cue in self.cues], dtype=np.float64)
        self._patches: dict[int, _Patch | None] = {}

    def cue_at(self, t: float) -> int | None:
        """Index of the cue shown at ``t`` seconds (start inclusive, end exclusive)."""
        k = int(np.searchsorted(self._starts, t, side="right")) - 1
        if k >= 0 and t < self.cues[k].end:
            return k
        return None

    def patch_at(self, t: float) -> _Patch | None:
        """The drawn cue shown at ``t`` (drawn on first use, then cached), or None."""
        k = self.cue_at(t)
        if k is None:
            return None
        if k not in self._patches:
            layout = _CueLayout(self.cues[k].lines, width=self.width, height=self.height, style=self.style)
            self._patches[k] = layout.patch()
            if len(self._patches) > 8:  # cues come in order: keep only the latest few
                self._patches.pop(next(iter(self._patches)))
        return self._patches[k]

    def paint(self, rgb: np.ndarray, t: float) -> np.ndarray:
        """``rgb`` (h, w, 3 uint8) with the caption at ``t``: a new array, or ``rgb`` itself
        when no cue is shown then."""
        if rgb.shape[:2] != (self.height, self.width):
            raise EngineError(
                f"Frame is {rgb.shape[1]}×{rgb.shape[0]}; "
                f"captions were laid out for {self.width}×{self.height}."
            )
        patch = self.patch_at(t)
        if patch is None:
            return rgb
        out = rgb.copy()
        self.paint_into(out, t)
        return out

    def paint_into(self, rgb: np.ndarray, t: float) -> None:
        """Draw the caption at ``t`` into ``rgb`` itself (which the caller owns)."""
        patch = self.patch_at(t)
        if patch is not None:
            rows = rgb[patch.y : patch.y + patch.height, patch.x : patch.x + patch.width]
            rows = rows.view()
            rows.shape = (patch.height, patch.width * 3)  # a view, never a copy (raises if it can't be)
            patch.rgb_weights.apply(rows)

    def paint_yuv(self, frame: av.VideoFrame, t: float) -> av.VideoFrame:
        """A yuv420p BT.709 limited-range frame with the caption at ``t``, blended in its own
        planes. ``frame`` must be one the caller owns (no decoder or cache holds its
        buffers): it is changed in place and returned."""
        patch = self.patch_at(t)
        if patch is None:
            return frame
        luma, chroma = patch.yuv_weights
        y, x, h, w = patch.y, patch.x, patch.height, patch.width
        luma.apply(_plane(frame, 0)[y : y + h, x : x + w])
        for index in (1, 2):
            chroma.apply(_plane(frame, index)[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2])
        return frame


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    """A writable view of one plane's visible pixels."""
    plane = frame.planes[index]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return rows[: plane.height, : plane.width]


def _owned_copy(frame: av.VideoFrame) -> av.VideoFrame:
    """A new yuv420p frame with ``frame``'s pixels and colour tags (decoders keep theirs)."""
    copy = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for index in range(3):
        _plane(copy, index)[...] = _plane(frame, index)
    copy.colorspace, copy.color_range = BT709, RANGE_MPEG
    return copy


class BurningWriter:
    """Wraps a ``VideoWriter``: every frame written gets the caption for its time.

    Frame ``k`` is shown at ``k / fps`` (the writer's own rate). Frames outside every cue
    go to the writer untouched. Inside a cue, RGB arrays are converted to YUV as the writer
    would and the patch blended there; decoded ``av.VideoFrame``s are brought to the
    encoder's format (a copy when they already are: the caller's frame, which may be a
    decoder's reference or written again, is never changed).
    """

    def __init__(self, writer, painter: CaptionPainter, fps: float | None = None):
        self.writer = writer
        self.painter = painter
        self.fps = float(fps if fps is not None else writer.rate)
        self.frames_written = 0

    def write(self, frame: np.ndarray | av.VideoFrame) -> None:
        t = self.frames_written / self.fps
        if self.painter.cue_at(t) is not None:
            frame = self._burned(frame, t)
        self.writer.write(frame)
        self.frames_written += 1

    def _burned(self, frame: np.ndarray | av.VideoFrame, t: float) -> av.VideoFrame:
        width, height = self.painter.width, self.painter.height
        if isinstance(frame, np.ndarray):
            if frame.shape[:2] != (height, width):
                raise EngineError(
                    f"Frame is {frame.shape[1]}×{frame.shape[0]}, writer expects {width}×{height}."
                )
            target = rgb_to_frame(frame)
        else:
            target = to_encoder_frame(frame, width, height)
            if target is frame:
                target = _owned_copy(frame)
        return self.painter.paint_yuv(target, t)

    def write_audio(self, samples: np.ndarray) -> None:
        self.writer.write_audio(samples)

    def __getattr__(self, name: str):
        # Everything else (rate, path, close, abort…) is the wrapped writer's.
        return getattr(self.writer, name)


def burning_writer(
    writer,
    style: CaptionStyle | None,
    *,
    words: Sequence[WordEvent] = (),
    duration: float | None = None,
    script: str | None = None,
    cues: Sequence[Cue] | None = None,
):
    """``writer`` with captions burned in at ``style``, or ``writer`` itself when ``style``
    is None or there is nothing to show.

    The cues come from ``words`` (and ``script``) over ``duration`` seconds, or from ``cues``
    made elsewhere (re-broken to fit); they are laid out for the writer's frame size and
    timed by its frame rate.
    """
    if style is None:
        return writer
    width, height = writer.width, writer.height
    if cues is not None:
        laid_out = rebreak_cues(cues, width=width, height=height, style=style)
    elif words and duration:
        laid_out = cues_for_burn(
            words, duration=duration, width=width, height=height, style=style, script=script
        )
    else:
        laid_out = []
    if not laid_out:
        return writer
    return BurningWriter(writer, CaptionPainter(laid_out, width, height, style))


__all__ = [
    "LOOKS",
    "POSITIONS",
    "SIZES",
    "BurningWriter",
    "burning_writer",
    "CaptionPainter",
    "CaptionStyle",
    "caption_style",
    "cues_for_burn",
    "font_for",
    "line_chars_for",
    "raqm_available",
    "rebreak_cues",
    "text_runs",
]
