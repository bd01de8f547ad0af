"""The team page's provider account form, and the render form's provider fields."""

from django import forms

from avatars.models import Avatar
from engine.remote import PROVIDERS, OptionSpec
from providers.models import PROVIDER_CHOICES

CREDENTIAL_LABELS = {
    "api_key": "API key",
    "appkey": "App key",
    "access_token": "Access token",
    "uid": "User id (uid)",
}


def _credential_fields() -> list[str]:
    names: list[str] = []
    for engine in PROVIDERS.values():
        names += [name for name in engine.credential_fields if name not in names]
    return names


def _needs(name: str) -> str:
    return ", ".join(engine.label for engine in PROVIDERS.values() if name in engine.credential_fields)


class ProviderAccountForm(forms.Form):
    provider = forms.ChoiceField(choices=PROVIDER_CHOICES)
    label = forms.CharField(max_length=60, label="Name", help_text="How the team tells its accounts apart.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in _credential_fields():
            # Never rendered back: a refused form shows the fields empty again.
            self.fields[name] = forms.CharField(
                label=CREDENTIAL_LABELS.get(name, name), required=False, strip=True,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=f"For {_needs(name)}.",
            )

    def clean(self):
        data = super().clean()
        engine = PROVIDERS.get(data.get("provider") or "")
        if engine is not None:
            for name in engine.credential_fields:
                if not data.get(name):
                    self.add_error(name, f"{engine.label} needs its {CREDENTIAL_LABELS.get(name, name).lower()}.")
        return data

    def credentials(self) -> dict[str, str]:
        engine = PROVIDERS[self.cleaned_data["provider"]]
        return {name: self.cleaned_data[name] for name in engine.credential_fields}


def provider_option_fields(provider: str) -> dict[str, forms.Field]:
    """Form fields for the options only `provider` offers (named ``<provider>_<option>``), plus its
    voice for a script; the render form shows them for that provider only."""
    engine = PROVIDERS[provider]
    fields: dict[str, forms.Field] = {}
    caps = engine.capabilities
    if caps.drive_by_text:
        fields[f"{provider}_voice"] = forms.CharField(
            required=False, max_length=100, label=f"{engine.label} voice",
            help_text=f"{engine.label}'s own voice id for a script; leave empty to have the built-in voice speak it.")
    for spec in caps.render_options:
        fields[f"{provider}_{spec.name}"] = _option_field(spec)
    return fields


# Option names are identifiers; their labels spell these words as people write them.
_LABEL_WORDS = {"url": "URL", "pdf": "PDF", "id": "ID", "ref": "reference", "fps": "FPS", "ssml": "SSML"}


def _option_label(name: str) -> str:
    label = " ".join(_LABEL_WORDS.get(word, word) for word in name.split("_"))
    return label[:1].upper() + label[1:]


def _option_field(spec: OptionSpec) -> forms.Field:
    common = {"required": False, "help_text": spec.help, "label": _option_label(spec.name)}
    if spec.kind == "bool":
        return forms.BooleanField(initial=spec.default, **common)
    if spec.kind == "int":
        return forms.IntegerField(min_value=spec.minimum, max_value=spec.maximum, initial=spec.default, **common)
    if spec.kind == "float":
        return forms.FloatField(min_value=spec.minimum, max_value=spec.maximum, initial=spec.default, **common)
    if spec.kind == "choice":
        return forms.ChoiceField(choices=[("", "Provider's default")] + [(c, c) for c in spec.choices],
                                 initial=spec.default or "", **common)
    return forms.CharField(max_length=1000, initial=spec.default or "", **common)


def provider_options_from(provider: str, cleaned_data: dict) -> tuple[str, dict]:
    """(voice, options) for `remote_job_create` from a form's cleaned data; unset options are left out."""
    engine = PROVIDERS[provider]
    voice = (cleaned_data.get(f"{provider}_voice") or "").strip()
    options = {}
    for spec in engine.capabilities.render_options:
        value = cleaned_data.get(f"{provider}_{spec.name}")
        if value in (None, "") or (spec.kind == "bool" and value is False and not spec.default):
            continue
        options[spec.name] = value
    return voice, options


COS_ADDRESS = "https://<bucket>.cos.<region>.myqcloud.com/…"

# The engine's option specs name Tencent's API; an owner filling in the form reads these instead.
CUSTOMISATION_OPTION_TEXT = {
    "make_type": ("Customisation type",
                  "Video avatars only: Instant takes 1–10 minutes of footage, Studio and 4K Studio 2–10 (4K "
                  "Studio in 4K). A photo is always a Photo Avatar: leave this at Tencent's default for one."),
    "identity_video_url": ("Authorisation letter (video)",
                           "An MP4 under …/idcard/ on Tencent COS. A video avatar needs this letter or the PDF "
                           "one."),
    "identity_pdf_url": ("Authorisation letter (PDF)", "A signed letter, a PDF under …/idcard/ on Tencent COS."),
    "keep_background": ("Keep the original background",
                        "Keep what is behind the person in the material (Tencent's IsHaveBackground)."),
    "notes": ("Notes for Tencent", "Up to 100 characters, for the people who review the material."),
    "demo_text": ("Demo script", "What the avatar says in the demo Tencent makes for you to confirm: 4–1000 "
                                 "characters, SSML allowed."),
    "demo_audio_url": ("Demo audio", "A voice for that demo: WAV, MP3, WMA, M4A or AAC up to 10 MB under "
                                     "…/audio/ on Tencent COS."),
}
MAKE_TYPE_CHOICES = {"": "Tencent's default (Instant)", "IMAGE": "Studio (IMAGE)",
                     "IMAGE_GENERAL": "Instant (IMAGE_GENERAL)", "IMAGE_4K": "4K Studio (IMAGE_4K)"}


def _cos_attrs(folder: str, name: str) -> dict[str, str]:
    return {"placeholder": f"{COS_ADDRESS}/{folder}/{name}", "spellcheck": "false", "autocapitalize": "off",
            "inputmode": "url"}


class CustomisationForm(forms.Form):
    """Customise one of the team's avatars at a provider (Tencent) from files on its own storage.
    Field names are the engine's, so a refusal lands next to the field it is about."""

    account = forms.ChoiceField(label="Account")
    avatar = forms.ChoiceField(label="Avatar", help_text="The studio avatar the customised one stands for.")
    name = forms.CharField(max_length=50, label="Anchor name",
                           help_text="Its name at Tencent: 2–50 Chinese characters, letters, numbers, _ or -, no "
                                     "spaces, not used before on this account.",
                           error_messages={"required": "Give the avatar a name at Tencent, e.g. Anna_studio."},
                           widget=forms.TextInput(attrs={"spellcheck": "false", "autocapitalize": "off"}))
    gender = forms.ChoiceField(choices=[("female", "Female"), ("male", "Male")])
    source = forms.CharField(max_length=1000, label="Material on Tencent COS",
                             help_text="The address of the video (an MP4 or MOV under …/video/) or, for a photo "
                                       "avatar, of the photo (under …/photo/) you uploaded to Tencent COS.",
                             error_messages={"required": "Paste the address of the video or photo you uploaded to "
                                                         "Tencent COS."},
                             widget=forms.TextInput(attrs=_cos_attrs("video", "presenter.mp4")))

    def __init__(self, *args, accounts, avatars, **kwargs):
        super().__init__(*args, **kwargs)
        self.accounts = {str(a.pk): a for a in accounts}
        self.avatars = {str(a.pk): a for a in avatars}
        self.fields["account"].choices = [(k, a.choice_label) for k, a in self.accounts.items()]
        self.fields["avatar"].choices = [(k, f"{a.name} ({a.get_kind_display().lower()})")
                                         for k, a in self.avatars.items()]
        self.option_names: list[str] = []
        for provider in {a.provider for a in accounts}:
            for spec in PROVIDERS[provider].capabilities.avatar_options:
                if spec.name not in self.fields:
                    self.fields[spec.name] = _option_field(spec)
                    self.option_names.append(spec.name)
        for name, (label, help_text) in CUSTOMISATION_OPTION_TEXT.items():
            if name in self.fields:
                self.fields[name].label, self.fields[name].help_text = label, help_text
        if "make_type" in self.fields:
            field = self.fields["make_type"]
            field.choices = [(value, MAKE_TYPE_CHOICES.get(value, label)) for value, label in field.choices]
            # Tencent's default is Instant for a video and the only choice it takes for a photo.
            field.initial = ""
        for name, folder, example in (("identity_video_url", "idcard", "letter.mp4"),
                                      ("identity_pdf_url", "idcard", "letter.pdf"),
                                      ("demo_audio_url", "audio", "hello.wav")):
            if name in self.fields:
                self.fields[name].widget.attrs.update(_cos_attrs(folder, example))
        if "demo_text" in self.fields:
            field = self.fields["demo_text"]
            field.widget = forms.Textarea(attrs={**field.widget.attrs, "rows": 3})

    def clean_account(self):
        return self.accounts[self.cleaned_data["account"]]

    def clean_avatar(self) -> Avatar:
        return self.avatars[self.cleaned_data["avatar"]]

    def options(self) -> dict:
        specs = {s.name: s for a in self.accounts.values() for s in PROVIDERS[a.provider].capabilities.avatar_options}
        provider_specs = {s.name for s in PROVIDERS[self.cleaned_data["account"].provider].capabilities.avatar_options}
        options = {}
        for name in self.option_names:
            value = self.cleaned_data.get(name)
            spec = specs[name]
            if name not in provider_specs or value in (None, "") or (spec.kind == "bool" and value is False
                                                                    and not spec.default):
                continue
            options[name] = value
        return options
