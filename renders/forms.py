import re

from django import forms

from avatars.models import Avatar
from engine import output, speech, timeline
from engine.errors import InputRejected
from providers.forms import provider_option_fields, provider_options_from
from providers.models import ProviderAccount
from providers.services import provider_account_for, provider_engine_choices, provider_render_check
from renders.models import Render
from renders.services import ProviderChoice
from studio.uploads import local_path, report_oversize

INTERVAL_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)$")


def parse_intervals(text: str) -> list[list[float]]:
    """Parse "1-2, 3.5-4" into [[1.0, 2.0], [3.5, 4.0]]; the engine judges the ranges."""
    intervals: list[list[float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = INTERVAL_PATTERN.match(part)
        if not match:
            raise forms.ValidationError(
                f"“{part}” is not a time range; write ranges in seconds like 1.5-3, separated by commas."
            )
        intervals.append([float(match[1]), float(match[2])])
    return intervals


def voice_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Voices grouped by language for the picker's <optgroup>s."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for voice in speech.list_voices():
        groups.setdefault(voice.language, []).append((voice.id, voice.name))  # the name says the gender
    return list(groups.items())


def language_choices() -> list[tuple[str, str]]:
    """One voice per language, named by the language alone: what a voice track is spoken in."""
    seen: dict[str, tuple[str, str]] = {}
    for voice in speech.list_voices():
        seen.setdefault(voice.language, (voice.id.split("+")[0], voice.name.split(" — ")[0]))
    return sorted(seen.values(), key=lambda choice: choice[1])


# Long enough for the words of a 10-minute voice track; the engine judges whether the
# audio can hold them.
TRANSCRIPT_MAX_CHARS = 20_000


CHOICE_DEFAULTS = {
    "language": "en-us",
    "caption_position": Render.CaptionPosition.BOTTOM,
    "caption_size": Render.CaptionSize.MEDIUM,
    "caption_look": Render.CaptionLook.OUTLINE,
    "aspect": Render.Aspect.KEEP,
    "quality": Render.Quality.HIGH,
    "engine": "local",
}


# What a new render speaks with until the creator picks a voice: one matching the avatar.
DEFAULT_VOICES = {Avatar.Gender.FEMALE: "en-us+f3", Avatar.Gender.MALE: "en-us"}


# What only a video avatar's footage has a use for; a photo's render ignores them.
VIDEO_ONLY_FIELDS = ("loop_mode", "segment_start", "segment_end", "disable_intervals")


class AvatarSelect(forms.Select):
    """Each avatar option carries its default voice, so the voice picker can follow the avatar,
    and its kind, so the page can hide the options that only a video avatar has."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        avatar = getattr(value, "instance", None)
        if avatar is not None:
            option["attrs"]["data-voice"] = DEFAULT_VOICES[avatar.gender]
            option["attrs"]["data-kind"] = avatar.kind
        return option


class RenderForm(forms.Form):
    avatar = forms.ModelChoiceField(queryset=Avatar.objects.none(), empty_label=None, widget=AvatarSelect)
    title = forms.CharField(
        max_length=120, error_messages={"required": "Give the video a title so you can find it later."}
    )
    driver = forms.ChoiceField(
        choices=Render.Driver.choices, initial=Render.Driver.TEXT, widget=forms.RadioSelect
    )
    # No maxlength: the limit counts the words spoken, not SSML markup, and a browser cutting a
    # long paste short would lose text silently. A live counter shows the same count instead.
    script = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "data-max-chars": speech.SCRIPT_MAX_CHARS}),
        help_text=f"{speech.SCRIPT_MIN_CHARS} to {speech.SCRIPT_MAX_CHARS:,} characters. SSML such as "
        '<break time="500ms"/> works inside <speak>…</speak>.',
    )
    voice = forms.ChoiceField(required=False, choices=())
    speed = forms.FloatField(
        initial=1.0,
        min_value=0.5,
        max_value=1.5,
        widget=forms.NumberInput(attrs={"step": "0.05", "type": "range"}),
    )
    volume = forms.IntegerField(
        initial=0, min_value=0, max_value=10, widget=forms.NumberInput(attrs={"type": "range"}),
        help_text="0 is normal; 10 is loudest.",
    )
    audio = forms.FileField(
        required=False,
        label="Voice track",
        help_text="WAV, MP3, M4A, AAC, OGG or WMA; 1 s to 10 min; up to 100 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": "audio/*,.wma,.m4a,.aac"}),
    )
    language = forms.ChoiceField(
        required=False, choices=(), initial=CHOICE_DEFAULTS["language"], label="Language spoken",
        help_text="Captions and the transcript's alignment follow it.",
    )
    transcript = forms.CharField(
        required=False,
        max_length=TRANSCRIPT_MAX_CHARS,
        label="Transcript (optional)",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The words spoken in the voice track. With them the mouth follows each sound "
        "and the captions show your words; without them, English voice tracks get "
        "machine-transcribed captions.",
    )
    burn_captions = forms.BooleanField(
        required=False, label="Burn captions into the video",
        help_text="Captions files are always made; this also draws them on the picture.",
    )
    caption_position = forms.ChoiceField(
        required=False, choices=Render.CaptionPosition.choices, initial=Render.CaptionPosition.BOTTOM, label="Position"
    )
    caption_size = forms.ChoiceField(
        required=False, choices=Render.CaptionSize.choices, initial=Render.CaptionSize.MEDIUM, label="Size"
    )
    caption_look = forms.ChoiceField(
        required=False, choices=Render.CaptionLook.choices, initial=Render.CaptionLook.OUTLINE, label="Style"
    )
    resolution = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None,
        choices=[("", "Keep the avatar's")] + Render.Resolution.choices,
        help_text="The short edge of the video.",
    )
    aspect = forms.ChoiceField(required=False, choices=Render.Aspect.choices, initial=Render.Aspect.KEEP,
                               label="Shape", help_text="A new shape is cropped around the face.")
    fps = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Frame rate",
        choices=[("", "Keep the avatar's")] + Render.FrameRate.choices,
    )
    quality = forms.ChoiceField(required=False, choices=Render.Quality.choices, initial=Render.Quality.HIGH)
    upscale = forms.BooleanField(required=False, label="Allow upscaling beyond the avatar's own resolution")
    loop_mode = forms.ChoiceField(
        choices=Render.LoopMode.choices,
        initial=Render.LoopMode.REVERSE,
        label="When the speech is longer than the avatar's video",
        widget=forms.RadioSelect,
    )
    segment_start = forms.FloatField(
        required=False, min_value=0, label="Segment start (s)",
        help_text="Circle: where the loop starts. Custom: the part of the footage to loop.",
    )
    segment_end = forms.FloatField(required=False, min_value=0, label="Segment end (s)")
    disable_intervals = forms.CharField(
        required=False,
        label="Leave the mouth untouched during",
        help_text="Up to 5 ranges of the avatar's footage in seconds, in order, e.g. 0-1.5, 12-14: "
        "whenever those moments of the footage play, the original mouth is kept.",
        widget=forms.TextInput(attrs={"placeholder": "0-1.5, 12-14"}),
    )

    engine = forms.ChoiceField(
        required=False, initial="local", choices=(),
        help_text="A provider account added on the team page renders with that provider instead.",
    )

    def __init__(self, *args, team, oversize_field: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.oversize_field = oversize_field
        self.fields["engine"].choices = provider_engine_choices(team=team)
        # Each provider's own options, shown only while that provider is chosen.
        self.provider_fields: dict[str, list[str]] = {}
        self.account_providers: dict[str, str] = {}  # engine choice → provider, for the page's script
        for account in ProviderAccount.objects.filter(team=team):
            self.account_providers[str(account.pk)] = account.provider
            if account.provider in self.provider_fields:
                continue
            extra = provider_option_fields(account.provider)
            self.fields.update(extra)
            self.provider_fields[account.provider] = list(extra)
        self.provider_choice: ProviderChoice | None = None
        self.fields["avatar"].queryset = Avatar.objects.filter(
            team=team, status=Avatar.Status.READY
        ).order_by("name")
        self.fields["voice"].choices = voice_choices()
        self.fields["language"].choices = language_choices()
        self.voice_track: speech.VoiceTrack | None = None

    def clean(self):
        cleaned = super().clean()
        if self.oversize_field:
            report_oversize(self, self.oversize_field)
            return cleaned
        # A select left out of the post (an older page, a script) means what the page preselects.
        for name, default in CHOICE_DEFAULTS.items():
            cleaned[name] = cleaned.get(name) or default
        if cleaned.get("driver") == Render.Driver.TEXT:
            self._clean_speech(cleaned)
        self._clean_loop(cleaned)
        self._clean_output(cleaned)
        if cleaned.get("driver") == Render.Driver.AUDIO:
            audio = cleaned.get("audio")
            cleaned["transcript"] = " ".join((cleaned.get("transcript") or "").split())
            if not audio:
                self.add_error("audio", "Choose the voice track to lip-sync to.")
            else:
                try:
                    with local_path(audio) as path:
                        self.voice_track = speech.check_audio_driver(path)
                except InputRejected as problem:
                    self.add_error("audio", str(problem))
            if self.voice_track is not None and cleaned["transcript"]:
                try:
                    speech.check_transcript_fits(cleaned["transcript"], voice=cleaned["language"],
                                                 audio_seconds=self.voice_track.seconds)
                except InputRejected as problem:
                    self.add_error("transcript", str(problem))
        if not self.errors:  # the provider's rules judge a complete, valid request
            self._clean_engine(cleaned)
        return cleaned

    def clean_disable_intervals(self) -> list[list[float]]:
        return parse_intervals(self.cleaned_data.get("disable_intervals") or "")

    def _clean_loop(self, cleaned: dict) -> None:
        avatar = cleaned.get("avatar")
        if avatar is not None and avatar.kind != Avatar.Kind.VIDEO:
            # A photo has no footage to loop or leave untouched. The page hides these options
            # for one, so whatever they still hold (a custom loop set up for a video avatar
            # picked first) must neither refuse the render nor be stored as if it applied.
            for name in VIDEO_ONLY_FIELDS:
                self.errors.pop(name, None)
            cleaned.update(loop_mode=Render.LoopMode.REVERSE, segment_start=None, segment_end=None,
                           disable_intervals=[])
            return
        footage = avatar.duration if avatar is not None else None
        try:
            timeline.check_render_options(
                loop_mode=cleaned.get("loop_mode") or Render.LoopMode.REVERSE,
                footage_seconds=footage,
                segment_start=cleaned.get("segment_start"),
                segment_end=cleaned.get("segment_end"),
                disable_intervals=cleaned.get("disable_intervals") or [],
            )
        except InputRejected as problem:
            self.add_error(problem.field if problem.field in self.fields else None, str(problem))

    def render_arguments(self) -> dict:
        """What ``services.render_create`` takes from a valid form (the page and the API)."""
        data = self.cleaned_data
        return {
            "avatar": data["avatar"], "title": data["title"], "driver": data["driver"],
            "script": data.get("script", ""), "voice": data.get("voice", ""), "speed": data["speed"],
            "volume": data["volume"], "audio": data.get("audio"), "voice_track": self.voice_track,
            "loop_mode": data["loop_mode"], "segment_start": data.get("segment_start"),
            "segment_end": data.get("segment_end"), "disable_intervals": data.get("disable_intervals"),
            "transcript": data.get("transcript", ""), "language": data.get("language", ""),
            "burn_captions": data["burn_captions"], "caption_position": data["caption_position"],
            "caption_size": data["caption_size"], "caption_look": data["caption_look"],
            "resolution": data.get("resolution"), "aspect": data["aspect"], "upscale": data["upscale"],
            "fps": data.get("fps"), "quality": data["quality"], "provider": self.provider_choice,
        }

    def provider_fieldsets(self) -> list[tuple[str, list]]:
        """(provider, bound fields) for each provider the team has an account with."""
        return [(provider, [self[name] for name in names]) for provider, names in self.provider_fields.items()]

    def _clean_engine(self, cleaned: dict) -> None:
        """A provider's own rules, checked before anything is created or sent."""
        try:
            account = provider_account_for(team=self.team, choice=cleaned.get("engine") or "local")
        except InputRejected as problem:
            self.add_error("engine", str(problem))
            return
        if account is None:
            return
        voice, options = provider_options_from(account.provider, cleaned)
        speaks_script = cleaned.get("driver") == Render.Driver.TEXT
        unsaved = Render(
            team=self.team, avatar=cleaned["avatar"], driver=cleaned["driver"],
            script=cleaned.get("script", "") if speaks_script else "",
            voice=cleaned.get("voice", "") if speaks_script else cleaned.get("language", ""),
            audio_duration=None if speaks_script else self.voice_track.seconds,
            loop_mode=cleaned.get("loop_mode") or Render.LoopMode.REVERSE,
            segment_start=cleaned.get("segment_start"), segment_end=cleaned.get("segment_end"),
            disable_intervals=cleaned.get("disable_intervals") or [],
            burn_captions=cleaned.get("burn_captions", False), resolution=cleaned.get("resolution"),
            aspect=cleaned["aspect"], fps=cleaned.get("fps"), preview="preview" in self.data,
        )
        try:
            provider_render_check(render=unsaved, account=account, voice=voice, options=options)
        except InputRejected as problem:
            named = f"{account.provider}_{problem.field}"
            self.add_error(named if named in self.fields else problem.field if problem.field in self.fields
                           else "engine", str(problem))
            return
        self.provider_choice = ProviderChoice(account=account, voice=voice, options=options)

    def _clean_output(self, cleaned: dict) -> None:
        avatar = cleaned.get("avatar")
        if avatar is None or not avatar.width or not avatar.height:
            return
        width, height = avatar.largest_size  # a 4K upload's master allows 4K
        try:
            output.check_output_format(
                output.OutputFormat(resolution=cleaned.get("resolution"), aspect=cleaned["aspect"],
                                    upscale=cleaned.get("upscale", False), fps=cleaned.get("fps")),
                width=width, height=height,
            )
        except InputRejected as problem:
            self.add_error(problem.field if problem.field in self.fields else None, str(problem))

    def _clean_speech(self, cleaned: dict) -> None:
        try:
            cleaned["script"] = speech.validate_script(cleaned.get("script", ""))
        except InputRejected as problem:
            self.add_error("script", str(problem))
        if not cleaned.get("voice"):
            self.add_error("voice", "Pick a voice.")
