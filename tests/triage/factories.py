import factory

from apps.triage.models import ExampleSource, Intent, TrainingExample
from apps.triage.text import normalize_text


class IntentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Intent
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"intent_{n}")


class TrainingExampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingExample

    text = factory.Sequence(lambda n: f"example message number {n}")
    normalized_text = factory.LazyAttribute(lambda example: normalize_text(example.text))
    intent = factory.SubFactory(IntentFactory)
    source = ExampleSource.IMPORT
