from django import forms

from avatars.models import Avatar
from engine import speech
from engine.errors import InputRejected
from renders.models import Render
from studio.uploads import local_path


def voice_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Voices grouped by language for the picker's <optgroup>s."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for voice in speech.list_voices():
        groups.setdefault(voice.language, []).append((voice.id, f"{voice.name} ({voice.gender})"))
    return list(groups.items())


class RenderForm(forms.Form):
    avatar = forms.ModelChoiceField(queryset=Avatar.objects.none(), empty_label=None)
    title = forms.CharField(max_length=120)
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
        elif cleaned.get("driver") == Render.Driver.AUDIO:
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

    def _clean_speech(self, cleaned: dict) -> None:
        try:
            cleaned["script"] = speech.validate_script(cleaned.get("script", ""))
        except InputRejected as problem:
            self.add_error("script", str(problem))
        if not cleaned.get("voice"):
            self.add_error("voice", "Pick a voice.")
