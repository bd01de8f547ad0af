import re

import django.db.models.deletion
from django.db import migrations, models

import avatars.models

RGB = re.compile(r"^rgb\((\d{1,3}),(\d{1,3}),(\d{1,3})\)$")


def rgb_to_hex(apps, schema_editor):
    Avatar = apps.get_model("avatars", "Avatar")
    for avatar in Avatar.objects.exclude(background_colour="").only("pk", "background_colour"):
        match = RGB.match(avatar.background_colour.replace(" ", ""))
        value = "#%02x%02x%02x" % tuple(min(255, int(part)) for part in match.groups()) if match else ""
        Avatar.objects.filter(pk=avatar.pk).update(background_colour=value)


def hex_to_rgb(apps, schema_editor):
    Avatar = apps.get_model("avatars", "Avatar")
    for avatar in Avatar.objects.exclude(background_colour="").only("pk", "background_colour"):
        rgb = tuple(int(avatar.background_colour[i : i + 2], 16) for i in (1, 3, 5))
        Avatar.objects.filter(pk=avatar.pk).update(background_colour="rgb(%d,%d,%d)" % rgb)


class Migration(migrations.Migration):
    dependencies = [("avatars", "0002_avatar_library_avatar_report")]

    operations = [
        migrations.RunPython(rgb_to_hex, hex_to_rgb),
        migrations.AlterField(
            model_name="avatar",
            name="background_colour",
            field=models.CharField(
                blank=True,
                help_text="#rrggbb; colour backgrounds only.",
                max_length=7,
                validators=[avatars.models.validate_hex_colour],
            ),
        ),
        migrations.AlterField(  # the same relation, now declared once on the shared job base
            model_name="avatar",
            name="team",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="%(class)ss", to="studio.team"
            ),
        ),
    ]
