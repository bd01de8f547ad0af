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


def _option_field(spec: OptionSpec) -> forms.Field:
    common = {"required": False, "help_text": spec.help, "label": spec.name.replace("_", " ").capitalize()}
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


class CustomisationForm(forms.Form):
    """Customise one of the team's avatars at a provider (Tencent) from files on its own storage.
    Field names are the engine's, so a refusal lands next to the field it is about."""

    account = forms.ChoiceField(label="Account")
    avatar = forms.ChoiceField(label="Avatar", help_text="The studio avatar the customised one stands for.")
    name = forms.CharField(max_length=50, label="Anchor name",
                           help_text="2–50 characters: Chinese characters, letters, numbers, _ or - (no spaces); "
                                     "not used before on the account.")
    gender = forms.ChoiceField(choices=[("female", "Female"), ("male", "Male")])
    source = forms.CharField(max_length=1000, label="Material on Tencent COS",
                             help_text="The address of the video (…/video/….mp4) or, for a photo avatar, the "
                                       "photo (…/photo/….png) you uploaded to Tencent COS from its console.")

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
