from django.db import migrations

from apps.copilot.prompts import DEFAULT_DRAFT_PROMPT


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    PromptTemplate = apps.get_model("copilot", "PromptTemplate")
    if not PromptTemplate.objects.filter(purpose="draft").exists():
        PromptTemplate.objects.create(
            purpose="draft",
            version=1,
            body=DEFAULT_DRAFT_PROMPT,
            is_active=True,
            note="Deskpilot's default",
        )


class Migration(migrations.Migration):
    dependencies = [("copilot", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
