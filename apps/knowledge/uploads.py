"""Files uploaded in the admin: stored in the media storage (MEDIA_ROOT, or an S3-compatible
bucket when MEDIA_S3_BUCKET is set), then imported like a folder by an ingest worker, which
may run on another machine."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath

from django.core.files.storage import storages
from django.core.files.uploadedfile import UploadedFile

from apps.core.exceptions import ValidationError
from apps.knowledge.imports import STORAGE_SCHEME, import_run_create
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
    if len(set(names)) < len(names):
        raise ValidationError("two files have the same name", field="files")
    folder = f"knowledge-uploads/{uuid.uuid4().hex}"
    storage = storages["default"]
    for name, file in zip(names, files, strict=True):
        stored = storage.save(f"{folder}/{name}", file)
        if stored != f"{folder}/{name}":  # a storage that renames would break external ids
            raise ValidationError(f"the media storage renamed {name} to {stored}", field="files")
    return import_run_create(
        paths=[f"{STORAGE_SCHEME}{folder}"], source_name=source_name, prune=prune
    )
