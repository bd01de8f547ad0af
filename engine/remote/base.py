"""The one interface every provider engine implements, and the rules they share.

A provider engine turns the studio's avatar and render requests into a provider's HTTP calls.
It declares up front what it can do (``Capabilities``): which avatar sources and drivers it
takes, the media rules its document states, and the options only it offers. ``check_avatar``
and ``check_render`` refuse what breaks those rules with the provider's rule in the sentence,
before anything is sent; ``start_*`` call them again, so nothing unchecked leaves the studio.

Providers fetch our media by URL (the studio hands over presigned or signed URLs); the one
exception is TopView, which takes files through its upload-credential flow, so its requests
carry local paths. Nothing here imports Django; credentials are passed in and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import InputRejected
from ..timeline import check_render_options
from .errors import CallbackRejected

STATES = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True)
class Media:
    """A file a provider will fetch (``url``) or that we upload (``path``), with what the studio
    already measured about it, so rules can be checked without downloading anything."""

    url: str | None = None
    path: Path | None = None
    format: str = ""  # lower-case extension without the dot: "mp4", "wav", "png"
    size_bytes: int | None = None
    duration: float | None = None  # seconds
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str = ""  # "h264", "hevc", … when probed

    def __post_init__(self):
        if self.path is not None and not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))
        fmt = (self.format or "").lower().lstrip(".")
        if not fmt:
            # The file's own suffix (a presigned URL keeps its key's) when the studio gave no format.
            name = self.path.name if self.path is not None else urlsplit(self.url or "").path.rsplit("/", 1)[-1]
            fmt = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        object.__setattr__(self, "format", fmt)


@dataclass(frozen=True)
class MediaRule:
    """One provider rule for one kind of file, written so it can be quoted to the creator."""

    what: str  # "the avatar video", used in sentences
    field: str  # the form field the studio shows the refusal next to
    formats: tuple[str, ...] = ()  # empty: the document names none
    seconds: tuple[float, float] | None = None
    max_bytes: int | None = None
    edge: tuple[int, int] | None = None  # each side of the frame, in pixels (min, max)
    note: str = ""  # the rest of the provider's rule, for docs and forms

    def check(self, media: Media, provider: str) -> None:
        if self.formats and media.format and media.format not in self.formats:
            raise InputRejected(
                f"{provider} takes {self.what} as {_choices([f.upper() for f in self.formats])}, "
                f"not {media.format.upper()}.",
                field=self.field, code="provider_format",
            )
        if self.seconds and media.duration is not None:
            low, high = self.seconds
            if not (low - 1e-6 <= media.duration <= high + 1e-6):
                raise InputRejected(
                    f"{provider} needs {self.what} to last {_span(low, high)}; this one lasts "
                    f"{_seconds(media.duration)}.", field=self.field, code="provider_duration",
                )
        if self.max_bytes and media.size_bytes is not None and media.size_bytes > self.max_bytes:
            raise InputRejected(
                f"{provider} takes {self.what} up to {_size(self.max_bytes)}; this one is "
                f"{_size(media.size_bytes)}.", field=self.field, code="provider_size",
            )
        if self.edge and media.width and media.height:
            low, high = self.edge
            if min(media.width, media.height) < low or max(media.width, media.height) > high:
                limit = f"at most {high} pixels" if low <= 1 else f"between {low} and {high} pixels"
                raise InputRejected(
                    f"{provider} needs each side of {self.what} to be {limit}; this one is "
                    f"{media.width}×{media.height}.", field=self.field, code="provider_resolution",
                )


@dataclass(frozen=True)
class OptionSpec:
    """An option only this provider offers; the studio builds a form field from it."""

    name: str
    kind: str  # "bool" | "int" | "float" | "str" | "choice"
    help: str
    choices: tuple[str, ...] = ()
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a provider offers, declared before anything is sent.

    A ``None`` rule means the provider does not take that input at all. ``avatar_*`` are for
    ``start_avatar`` (a trained or customised avatar at the provider); ``render_*`` for the
    avatar footage or photo a render takes directly.
    """

    avatar_video: MediaRule | None = None
    avatar_image: MediaRule | None = None
    render_avatar_id: bool = False  # renders with an avatar id from the provider
    render_video: MediaRule | None = None
    render_image: MediaRule | None = None
    audio: MediaRule | None = None
    text_length: tuple[int, int | None] | None = None  # (min, max) characters; None: no text driving
    voices: tuple[str, ...] = ()  # when the document lists them
    languages: tuple[str, ...] = ()
    captions: bool = False
    output_size: bool = False  # the render may ask for a width and height
    loop_modes: tuple[str, ...] = ("reverse",)
    segments: bool = False
    max_disable_intervals: int = 0
    callbacks: bool = False
    uploads_files: bool = False  # takes local paths (upload flow) rather than URLs
    avatar_options: tuple[OptionSpec, ...] = ()
    render_options: tuple[OptionSpec, ...] = ()
    refusals: tuple[str, ...] = ()  # what it does not do, and why, in the provider's terms

    @property
    def avatar_from_video(self) -> bool:
        return self.avatar_video is not None

    @property
    def avatar_from_image(self) -> bool:
        return self.avatar_image is not None

    @property
    def drive_by_text(self) -> bool:
        return self.text_length is not None

    @property
    def drive_by_audio(self) -> bool:
        return self.audio is not None


@dataclass(frozen=True)
class AvatarRequest:
    """Make an avatar at the provider (A2E training, Tencent customisation)."""

    name: str
    source: Media
    kind: str = "video"  # "video" | "photo"
    gender: str = "female"  # "female" | "male"
    background_color: tuple[int, int, int] | None = None
    background_image_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderRequest:
    """Render a talking video at the provider.

    The avatar is either the provider's own id (``avatar_id``: trained there, or from its
    catalogue) or footage/photo handed over per render (``avatar_source``, ``avatar_kind``).
    Exactly one driver: ``text`` (with ``voice``) or ``audio``.
    """

    avatar_id: str | None = None
    avatar_source: Media | None = None
    avatar_kind: str = "video"
    text: str | None = None
    voice: str | None = None
    speed: float = 1.0
    volume: int = 0
    audio: Media | None = None
    loop_mode: str = "reverse"
    segment_start: float | None = None
    segment_end: float | None = None
    disable_intervals: Sequence[Sequence[float]] = ()
    captions: bool = False
    width: int | None = None
    height: int | None = None
    callback_url: str | None = None
    title: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderTask:
    """What the studio saves before polling: enough to poll again after a worker restart."""

    provider: str
    kind: str  # "avatar" | "render"
    task_id: str
    data: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable extras


@dataclass(frozen=True)
class Status:
    state: str  # one of STATES
    progress: float | None = None  # 0..1 when the provider says
    video_url: str | None = None
    captions_url: str | None = None
    poster_url: str | None = None
    avatar_id: str | None = None  # a finished avatar: the id later renders use
    error: str = ""  # failed: a sentence for the creator, with the provider's reason
    raw_status: str = ""  # the provider's own status word, for the admin
    queue_position: int | None = None
    note: str = ""  # something the owner must do at the provider (e.g. confirm a demo)

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}")


@dataclass(frozen=True)
class CallbackEvent:
    task_id: str
    status: Status


class Credentials:
    """The account's secrets. Kept out of ``repr`` and ``str`` so they never reach a log line."""

    def __init__(self, provider: str, values: Mapping[str, str], required: Sequence[str]):
        missing = [name for name in required if not str(values.get(name) or "").strip()]
        if missing:
            raise InputRejected(
                f"The {provider} account is missing its {_choices(tuple(missing), 'and')}.", field="credentials",
                code="credentials_missing",
            )
        self._values = {name: str(values[name]).strip() for name in required}

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def secrets(self) -> list[str]:
        return list(self._values.values())

    def __repr__(self) -> str:
        return f"Credentials({', '.join(f'{k}=***' for k in self._values)})"

    __str__ = __repr__


class ProviderEngine(ABC):
    """One provider. Subclasses set ``name``, ``label``, ``capabilities``, ``credential_fields``."""

    name: ClassVar[str]
    label: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    credential_fields: ClassVar[tuple[str, ...]]

    # --- avatars ---------------------------------------------------------------------------
    def check_avatar(self, request: AvatarRequest) -> None:
        caps = self.capabilities
        if request.kind not in ("video", "photo"):
            raise InputRejected("An avatar comes from a video or a photo.", field="kind", code="avatar_kind")
        rule = caps.avatar_video if request.kind == "video" else caps.avatar_image
        if rule is None:
            if not (caps.avatar_video or caps.avatar_image):
                raise InputRejected(self._no_avatar_step(), field="engine", code="provider_no_avatar")
            raise InputRejected(
                f"{self.label} does not make avatars from a {request.kind}.", field="source",
                code="provider_avatar_kind",
            )
        if not request.name.strip():
            raise InputRejected("Give the avatar a name.", field="name", code="name_missing")
        if request.gender not in ("female", "male"):
            raise InputRejected(f"{self.label} needs the gender as female or male.", field="gender", code="gender")
        self._check_source(request.source, rule)
        check_options(self.label, caps.avatar_options, request.options)
        if request.background_color is not None:
            check_rgb(request.background_color)
        self._check_avatar(request)

    def _check_avatar(self, request: AvatarRequest) -> None:
        """The provider's own avatar rules beyond the shared ones."""

    def _no_avatar_step(self) -> str:
        return f"{self.label} has no separate avatar step: render with the avatar's own footage instead."

    def start_avatar(self, request: AvatarRequest) -> ProviderTask:
        self.check_avatar(request)
        return self._start_avatar(request)

    def _start_avatar(self, request: AvatarRequest) -> ProviderTask:
        raise InputRejected(self._no_avatar_step(), field="engine", code="provider_no_avatar")

    def avatar_status(self, task: ProviderTask) -> Status:
        raise InputRejected(self._no_avatar_step(), field="engine", code="provider_no_avatar")

    # --- renders ---------------------------------------------------------------------------
    def check_render(self, request: RenderRequest) -> None:
        caps = self.capabilities
        label = self.label
        if request.avatar_id and request.avatar_source is not None:
            raise InputRejected("Choose either a provider avatar id or the avatar's own footage, not both.",
                                field="avatar", code="avatar_both")
        if request.avatar_id:
            if not caps.render_avatar_id:
                raise InputRejected(f"{label} renders from the avatar's own footage, not from an avatar id.",
                                    field="avatar", code="provider_avatar_id")
        elif request.avatar_source is not None:
            if request.avatar_kind not in ("video", "photo"):
                raise InputRejected("An avatar is a video or a photo.", field="avatar", code="avatar_kind")
            rule = caps.render_video if request.avatar_kind == "video" else caps.render_image
            if rule is None:
                what = "a video" if request.avatar_kind == "video" else "a photo"
                hint = " Train the avatar there first and render with its id." if caps.render_avatar_id else ""
                raise InputRejected(f"{label} does not render from {what}.{hint}", field="avatar",
                                    code="provider_avatar_kind")
            self._check_source(request.avatar_source, rule)
        else:
            raise InputRejected("Choose the avatar to render.", field="avatar", code="avatar_missing")

        has_text = bool(request.text and request.text.strip())
        if has_text == (request.audio is not None):
            raise InputRejected("Give either a script or an audio file, not both or neither.", field="script",
                                code="driver")
        if has_text:
            if caps.text_length is None:
                raise InputRejected(
                    f"{label} lip-syncs to an audio file only; upload a voice track, or render a script with "
                    "the built-in engine.", field="script", code="provider_no_text")
            low, high = caps.text_length
            length = len(request.text)
            if length < low or (high is not None and length > high):
                limit = f"between {low:,} and {high:,}" if high is not None else f"at least {low:,}"
                raise InputRejected(
                    f"{label} takes a script of {limit} characters; this one has {length:,}.",
                    field="script", code="provider_text_length")
            if caps.voices and request.voice and request.voice not in caps.voices:
                raise InputRejected(f"{label} has no voice {request.voice!r}.", field="voice", code="provider_voice")
        else:
            if caps.audio is None:
                raise InputRejected(f"{label} takes a script, not an audio file.", field="audio",
                                    code="provider_no_audio")
            self._check_source(request.audio, caps.audio)

        if request.captions and not caps.captions:
            raise InputRejected(f"{label} does not make captions; turn captions off for this engine.",
                                field="captions", code="provider_captions")
        if (request.width or request.height) and not caps.output_size:
            raise InputRejected(f"{label} does not take an output size; it keeps the avatar's own size.",
                                field="size", code="provider_size_option")
        if request.loop_mode not in caps.loop_modes:
            sentence = (f"{label} offers the loop modes {_choices(caps.loop_modes)}, not {request.loop_mode!r}."
                        if len(caps.loop_modes) > 1 else
                        f"{label} does not take a loop mode ({request.loop_mode}); it plays the footage its own way.")
            raise InputRejected(sentence, field="loop_mode", code="provider_loop_mode")
        if (request.segment_start is not None or request.segment_end is not None) and not caps.segments:
            raise InputRejected(f"{label} does not take a segment of the footage.", field="segment_start",
                                code="provider_segment")
        if request.disable_intervals and caps.max_disable_intervals == 0:
            raise InputRejected(f"{label} cannot leave intervals without lip sync.",
                                field="disable_intervals", code="provider_intervals")
        footage = request.avatar_source.duration if request.avatar_source is not None else None
        # The studio's own rules for segments and intervals are Tencent's, so they apply as they are.
        check_render_options(loop_mode=request.loop_mode,
                             footage_seconds=footage, segment_start=request.segment_start,
                             segment_end=request.segment_end, disable_intervals=request.disable_intervals)
        if request.callback_url is not None:
            if not caps.callbacks:
                raise InputRejected(f"{label} does not call back; the studio polls it instead.",
                                    field="callback_url", code="provider_callback")
            check_url(request.callback_url, what="The callback URL", field="callback_url")
        check_options(label, caps.render_options, request.options)
        self._check_render(request)

    def _check_render(self, request: RenderRequest) -> None:
        """The provider's own rules beyond the shared ones."""

    def start_render(self, request: RenderRequest) -> ProviderTask:
        self.check_render(request)
        return self._start_render(request)

    @abstractmethod
    def _start_render(self, request: RenderRequest) -> ProviderTask: ...

    @abstractmethod
    def render_status(self, task: ProviderTask) -> Status: ...

    def verify_callback(self, *, url: str, headers: Mapping[str, str], body: bytes, secret: str) -> CallbackEvent:
        raise CallbackRejected(f"{self.label} does not send callbacks.")

    # --- shared helpers --------------------------------------------------------------------
    def _check_source(self, media: Media, rule: MediaRule) -> None:
        if self.capabilities.uploads_files:
            if media.path is None:
                raise InputRejected(f"{self.label} takes {rule.what} by upload; the file is missing.",
                                    field=rule.field, code="provider_upload_path")
        else:
            if not media.url:
                raise InputRejected(f"{self.label} fetches {rule.what} by URL; there is no URL for it.",
                                    field=rule.field, code="provider_url_missing")
            check_url(media.url, what=_capital(rule.what) + "'s URL", field=rule.field)
        rule.check(media, self.label)

    def close(self) -> None:
        http = getattr(self, "_http", None)
        if http is not None:
            http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def check_url(url: str, *, what: str, field: str) -> None:
    """A2E's URL hygiene, which every provider that fetches our files benefits from."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputRejected(f"{what} must be an http(s) address the provider can fetch.", field=field,
                            code="provider_url")
    if any(ch.isspace() for ch in url):
        raise InputRejected(f"{what} must not contain spaces.", field=field, code="provider_url_space")


def check_rgb(colour: Sequence[int]) -> None:
    if len(colour) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in colour):
        raise InputRejected("The background colour needs three values from 0 to 255 (red, green, blue).",
                            field="background_color", code="background_color")


def check_options(provider: str, specs: Sequence[OptionSpec], options: Mapping[str, Any]) -> None:
    known = {spec.name: spec for spec in specs}
    for name, value in options.items():
        spec = known.get(name)
        if spec is None:
            offered = _choices(tuple(known)) if known else "none"
            raise InputRejected(f"{provider} has no option {name!r} (it offers {offered}).", field=name,
                                code="provider_option")
        if value is None:
            continue
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            "str": isinstance(value, str),
            "choice": value in spec.choices,
        }[spec.kind]
        if not ok:
            expected = {"bool": "yes or no", "int": "a whole number", "float": "a number", "str": "text",
                        "choice": _choices(spec.choices)}[spec.kind]
            raise InputRejected(f"{provider}'s {spec.name} must be {expected}.", field=name, code="provider_option")
        if spec.kind in ("int", "float") and (
            (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum)
        ):
            raise InputRejected(f"{provider}'s {spec.name} must be between {spec.minimum:g} and {spec.maximum:g}.",
                                field=name, code="provider_option")


def option(request, name: str, specs: Sequence[OptionSpec]):
    value = request.options.get(name)
    if value is None:
        for spec in specs:
            if spec.name == name:
                return spec.default
    return value


# --- callbacks ------------------------------------------------------------------------------
# Providers that call back (Tencent) do not sign their requests, so the proof travels in the
# URL we give them: an HMAC of our own reference for the job, keyed by a studio secret.

def _callback_mac(secret: str, provider: str, reference: str) -> str:
    return hmac.new(secret.encode(), f"{provider}:{reference}".encode(), hashlib.sha256).hexdigest()


def signed_callback_url(base_url: str, *, provider: str, reference: str, secret: str) -> str:
    parts = urlsplit(base_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("ref", reference), ("sig", _callback_mac(secret, provider, reference))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def callback_reference(url: str, *, provider: str, secret: str) -> str:
    """The job reference a callback URL carries, once its signature checks out."""
    query = dict(parse_qsl(urlsplit(url).query))
    reference, signature = query.get("ref", ""), query.get("sig", "")
    if not reference or not hmac.compare_digest(signature, _callback_mac(secret, provider, reference)):
        raise CallbackRejected("The callback's signature does not match; it was not sent for one of our renders.")
    return reference


# --- wording --------------------------------------------------------------------------------

def _choices(values: Sequence[str], joiner: str = "or") -> str:
    values = [str(v) for v in values]
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + f" {joiner} " + values[-1]


def _seconds(value: float) -> str:
    if value >= 120:
        return f"{value / 60:.1f} minutes"
    return f"{value:.1f} s"


def _span(low: float, high: float) -> str:
    return f"between {_seconds(low)} and {_seconds(high)}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]

