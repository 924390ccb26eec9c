"""Widget keys get an identity secret (one random secret per existing key) and
`identity_required`."""

import secrets

from django.db import migrations, models

import apps.accounts.models


def identity_secrets_fill(apps, schema_editor):  # type: ignore[no-untyped-def]
    # A field default with a callable is evaluated once for every existing row: each key must
    # get its own secret, so they are generated row by row here.
    WidgetKey = apps.get_model("accounts", "WidgetKey")
    for widget_key in WidgetKey.objects.filter(identity_secret="").only("pk"):
        WidgetKey.objects.filter(pk=widget_key.pk).update(identity_secret=secrets.token_urlsafe(32))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_widgetkey_idempotencyrecord"),
    ]

    operations = [
        migrations.AddField(
            model_name="widgetkey",
            name="identity_secret",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(identity_secrets_fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="widgetkey",
            name="identity_secret",
            field=models.CharField(
                default=apps.accounts.models.widget_identity_secret_generate,
                editable=False,
                help_text="The site's server signs its signed-in visitors with it; never put it "
                "in a page.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="widgetkey",
            name="identity_required",
            field=models.BooleanField(
                default=False,
                help_text="Refuse conversations from visitors the site has not signed "
                "(data-user-id and data-user-hash).",
            ),
        ),
        migrations.AddConstraint(
            model_name="widgetkey",
            constraint=models.CheckConstraint(
                condition=models.Q(("identity_secret", ""), _negated=True),
                name="widgetkey_identity_secret_set",
            ),
        ),
    ]
