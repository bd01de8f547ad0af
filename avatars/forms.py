from django import forms

from avatars.models import Avatar, validate_avatar_name, validate_hex_colour
from engine import preflight
from engine.errors import InputRejected
from studio.uploads import local_path, report_oversize


class AvatarForm(forms.Form):
    name = forms.CharField(
        max_length=50,
        validators=[validate_avatar_name],
        help_text="2–50 characters: letters, digits, spaces, _ and -.",
        error_messages={"required": "Give the avatar a name your team will recognise."},
    )
    gender = forms.ChoiceField(
        choices=Avatar.Gender.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Pick a gender; it chooses the default voice for this avatar."},
    )
    source = forms.FileField(
        label="Video or photo",
        error_messages={"required": "Choose the video or photo to make the avatar from."},
        help_text="MP4 or MOV, 10 s to 5 min of you speaking; or a JPEG, PNG or WebP photo up "
        "to 10 MB. One face, looking at the camera.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "video/mp4,video/quicktime,image/jpeg,image/png,image/webp"}
        ),
    )
    background = forms.ChoiceField(
        choices=Avatar.Background.choices, initial=Avatar.Background.NONE, widget=forms.RadioSelect
    )
    background_colour = forms.CharField(
        required=False,
        initial="#1f7a4d",
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    background_image = forms.FileField(
        required=False, widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"})
    )
    reference_photo = forms.FileField(
        required=False, label="Reference photo (optional)",
        help_text="For a video with several people in it: a photo of the one who should speak.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    consent = forms.BooleanField(
        label="I am the person in this file, or I have their written consent to make an avatar of them.",
        error_messages={"required": "Confirm that you are this person or have their consent."},
    )

    def __init__(self, *args, team, oversize_field: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.oversize_field = oversize_field

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if Avatar.objects.filter(team=self.team, name__iexact=name).exists():
            raise forms.ValidationError(f"Your team already has an avatar called “{name}”; pick another name.")
        return name

    def clean_background_colour(self) -> str:
        value = self.cleaned_data["background_colour"].lower()
        if value:
            validate_hex_colour(value)
        return value

    def avatar_arguments(self) -> dict:
        """What ``services.avatar_create`` takes from a valid form (the page and the API)."""
        data = self.cleaned_data
        return {
            "name": data["name"], "gender": data["gender"], "source": data["source"],
            "background": data["background"], "background_colour": data["background_colour"],
            "background_image": data.get("background_image"), "reference_photo": data.get("reference_photo"),
        }

    def clean(self):
        cleaned = super().clean()
        report_oversize(self, self.oversize_field)
        source = cleaned.get("source")
        if source:
            try:
                with local_path(source) as path:
                    kind, _ = preflight.source_kind(path, name=source.name)
            except InputRejected as problem:
                self.add_error("source", str(problem))
            else:
                too_large = kind == Avatar.Kind.PHOTO and preflight.photo_size_problem(source.size)
                if too_large:
                    self.add_error("source", too_large)
        reference = cleaned.get("reference_photo")
        if reference:
            try:
                with local_path(reference) as path:
                    preflight.check_reference_photo(path)
            except InputRejected as problem:
                self.add_error("reference_photo", str(problem))
        background = cleaned.get("background")
        if background == Avatar.Background.COLOUR and not cleaned.get("background_colour"):
            self.add_error("background_colour", "Pick the colour to put behind you.")
        if background == Avatar.Background.IMAGE:
            image = cleaned.get("background_image")
            if not image:
                self.add_error("background_image", "Choose the image to put behind you.")
            else:
                try:
                    with local_path(image) as path:
                        preflight.check_background_image(path)
                except InputRejected as problem:
                    self.add_error("background_image", str(problem))
        return cleaned
