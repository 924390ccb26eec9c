from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.knowledge.models import ImportRun, ImportState

pytestmark = pytest.mark.django_db


def test_admin_upload_stores_the_files_and_queues_an_import_run(admin_client, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = tmp_path
    files = [
        SimpleUploadedFile("refunds.md", b"# Refunds\n\nFive days."),
        SimpleUploadedFile("hours.txt", b"Hours\n\nNine to five."),
    ]
    # when
    response = admin_client.post(
        "/admin/knowledge/importrun/upload/", {"files": files, "source": "uploads"}
    )
    # then
    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert (run.state, run.source.name, run.prune) == (ImportState.QUEUED, "uploads", False)
    folder = Path(run.paths[0])
    assert folder.is_relative_to(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["hours.txt", "refunds.md"]
    assert (folder / "refunds.md").read_bytes() == b"# Refunds\n\nFive days."


def test_admin_upload_refuses_unsupported_files_and_queues_nothing(
    admin_client, settings, tmp_path
):
    # given
    settings.MEDIA_ROOT = tmp_path
    # when
    response = admin_client.post(
        "/admin/knowledge/importrun/upload/",
        {"files": [SimpleUploadedFile("deck.pptx", b"PK\x03\x04")], "source": "uploads"},
    )
    # then
    assert response.status_code == 200
    assert "unsupported file type: deck.pptx" in response.content.decode()
    assert ImportRun.objects.count() == 0
    assert list(tmp_path.iterdir()) == []


def test_import_runs_are_listed_in_the_admin(admin_client):
    # when
    response = admin_client.get("/admin/knowledge/importrun/")
    # then
    assert response.status_code == 200
    assert "Upload files" in response.content.decode()


def test_the_import_runs_list_shows_live_progress_bars(admin_client):
    # given: one import running, one finished
    from apps.knowledge.models import Source

    source = Source.objects.create(name="uploads")
    ImportRun.objects.create(source=source, state=ImportState.RUNNING, processed=3, total=12)
    ImportRun.objects.create(source=source, state=ImportState.SUCCEEDED, processed=5, total=5)
    # when
    page = admin_client.get("/admin/knowledge/importrun/").content.decode()
    # then: the running one's bar reloads the page until it is done; the finished one's not
    assert '<progress max="12" value="3" data-running></progress> 3/12' in page
    assert '<progress max="5" value="5"></progress> 5/5' in page
    assert "core/admin_progress.js" in page
