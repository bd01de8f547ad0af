import re

from django import forms

from avatars.models import Avatar
from engine import speech
from engine.errors import InputRejected
from renders.models import Render
from studio.uploads import local_path


MAX_DISABLED_INTERVALS = 5
MIN_CUSTOM_SEGMENT_SECONDS = 5.0
INTERVAL_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)$")


def parse_intervals(text: str) -> list[list[float]]:
    """Parse "1-2, 3.5-4" into [[1.0, 2.0], [3.5, 4.0]], refusing what the engine can't honour."""
    intervals: list[list[float]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = INTERVAL_PATTERN.match(part)
        if not match:
            raise forms.ValidationError(
                f"“{part}” is not a time range; write ranges in seconds like 1.5-3, separated by commas."
            )
        start, end = float(match[1]), float(match[2])
        if end <= start:
            raise forms.ValidationError(f"In “{part}” the end must come after the start.")
        if intervals and start < intervals[-1][1]:
            raise forms.ValidationError("List the ranges in order, without overlaps.")
        intervals.append([start, end])
    if len(intervals) > MAX_DISABLED_INTERVALS:
        raise forms.ValidationError(f"At most {MAX_DISABLED_INTERVALS} ranges can be left untouched.")
    return intervals


def voice_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Voices grouped by language for the picker's <optgroup>s."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for voice in speech.list_voices():
        groups.setdefault(voice.language, []).append((voice.id, f"{voice.name} ({voice.gender})"))
    return list(groups.items())


class RenderForm(forms.Form):
    avatar = forms.ModelChoiceField(queryset=Avatar.objects.none(), empty_label=None)
    title = forms.CharField(
        max_length=120, error_messages={"required": "Give the video a title so you can find it later."}
    )
    driver = forms.ChoiceField(
        choices=Render.Driver.choices, initial=Render.Driver.TEXT, widget=forms.RadioSelect
    )
    script = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": 4000}),
        help_text="4 to 2,000 characters. SSML such as <break time=\"500ms\"/> works inside <speak>…</speak>.",
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
        help_text="Up to 5 ranges of the output in seconds, in order, e.g. 0-1.5, 12-14.",
        widget=forms.TextInput(attrs={"placeholder": "0-1.5, 12-14"}),
    )

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["avatar"].queryset = Avatar.objects.filter(
            team=team, status=Avatar.Status.READY
        ).order_by("name")
        self.fields["voice"].choices = voice_choices()
        self.audio_duration: float | None = None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("driver") == Render.Driver.TEXT:
            self._clean_speech(cleaned)
        self._clean_loop(cleaned)
        if cleaned.get("driver") == Render.Driver.AUDIO:
            audio = cleaned.get("audio")
            if not audio:
                self.add_error("audio", "Choose the voice track to lip-sync to.")
            else:
                try:
                    with local_path(audio) as path:
                        self.audio_duration = speech.check_audio_driver(path)
                except InputRejected as problem:
                    self.add_error("audio", str(problem))
        return cleaned

    def clean_disable_intervals(self) -> list[list[float]]:
        return parse_intervals(self.cleaned_data.get("disable_intervals") or "")

    def _clean_loop(self, cleaned: dict) -> None:
        avatar, mode = cleaned.get("avatar"), cleaned.get("loop_mode")
        start, end = cleaned.get("segment_start"), cleaned.get("segment_end")
        if mode == Render.LoopMode.CUSTOM:
            if start is None or end is None:
                self.add_error("segment_end", "A custom segment needs a start and an end time.")
                return
            if end - start < MIN_CUSTOM_SEGMENT_SECONDS:
                self.add_error(
                    "segment_end",
                    f"The segment is {max(end - start, 0):.1f} s long; a custom segment needs at least 5 s.",
                )
        if avatar is not None and avatar.kind == Avatar.Kind.VIDEO and avatar.duration:
            for name, value in (("segment_start", start), ("segment_end", end)):
                if value is not None and value > avatar.duration:
                    self.add_error(
                        name, f"The avatar's footage is only {avatar.duration:.1f} s long."
                    )

    def _clean_speech(self, cleaned: dict) -> None:
        try:
            cleaned["script"] = speech.validate_script(cleaned.get("script", ""))
        except InputRejected as problem:
            self.add_error("script", str(problem))
        if not cleaned.get("voice"):
            self.add_error("voice", "Pick a voice.")
