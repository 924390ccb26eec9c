"""Files uploaded in the admin: stored under MEDIA_ROOT, then imported like a folder."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from apps.core.exceptions import ValidationError
from apps.knowledge.imports import import_run_create
from apps.knowledge.models import ImportRun
from apps.knowledge.parsing import SUPPORTED_SUFFIXES

MAX_UPLOAD_FILES = 500


def upload_import(
    *, files: Sequence[UploadedFile], source_name: str, prune: bool = False
) -> ImportRun:
    """Save uploaded files in a fresh folder and queue their import on the ingest queue.

    Each file's external_id is its file name, so uploading a file again updates its article.
    """
    if not files:
        raise ValidationError("choose at least one file", field="files")
    if len(files) > MAX_UPLOAD_FILES:
        raise ValidationError(f"at most {MAX_UPLOAD_FILES} files per upload", field="files")
    names = [PurePosixPath(file.name or "").name for file in files]
    unsupported = sorted(
        {n for n in names if PurePosixPath(n).suffix.lower() not in SUPPORTED_SUFFIXES}
    )
    if unsupported:
        raise ValidationError(
            f"unsupported file type: {', '.join(unsupported)} (use .md, .html, .txt or .pdf)",
            field="files",
        )
    folder = settings.MEDIA_ROOT / "knowledge-uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    for name, file in zip(names, files, strict=True):
        with open(folder / name, "wb") as target:
            for part in file.chunks():
                target.write(part)
    return import_run_create(paths=[str(folder)], source_name=source_name, prune=prune)
