from django import forms


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=80,
        label="Key name",
        help_text="What the key is for, so you know which to revoke later, e.g. “CMS publishing”.",
        error_messages={"required": "Name the key after what will use it."},
    )
