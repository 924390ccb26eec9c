from django.db import migrations, models
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        # pgvector: every later migration with a vector column depends on this one.
        VectorExtension(),
        migrations.CreateModel(
            name="ServiceHeartbeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, unique=True)),
                ("hostname", models.CharField(blank=True, max_length=255)),
                ("last_seen_at", models.DateTimeField()),
            ],
        ),
    ]
