"""`manage.py encoder_export`: export the embedding model to ONNX into `EMBEDDING_ONNX_DIR`
now (an image build runs it, so no pod exports at start). Nothing is done when the export is
already there; prints where it is."""

from django.core.management.base import BaseCommand

from apps.llm.embeddings import get_model
from apps.llm.encoder_onnx import export_ensure


class Command(BaseCommand):
    help = "Export the embedding model to ONNX Runtime's format (once; kept in EMBEDDING_ONNX_DIR)."

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        path = export_ensure(get_model())
        self.stdout.write(self.style.SUCCESS(f"embedding model exported: {path}"))
