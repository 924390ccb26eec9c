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
    # then: the files are in the media storage, and the run names their folder there
    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert (run.state, run.source.name, run.prune) == (ImportState.QUEUED, "uploads", False)
    assert run.paths[0].startswith("storage:knowledge-uploads/")
    folder = tmp_path / run.paths[0].removeprefix("storage:")
    assert sorted(p.name for p in folder.iterdir()) == ["hours.txt", "refunds.md"]
    assert (folder / "refunds.md").read_bytes() == b"# Refunds\n\nFive days."


@pytest.mark.django_db(transaction=True)
def test_uploads_on_an_s3_bucket_are_imported_by_a_worker_that_shares_no_disk(
    admin_client, settings, tmp_path, monkeypatch
):
    import boto3
    from moto import mock_aws

    from apps.knowledge.imports import import_run_execute
    from apps.knowledge.models import Article

    # given: the media storage on an S3 bucket (S3's protocol, in process), no shared disk
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    settings.MEDIA_ROOT = tmp_path / "no-shared-disk"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "deskpilot-media", "location": "deskpilot",
                        "default_acl": None, "file_overwrite": False},
        },
    }  # fmt: skip
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket="deskpilot-media",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        # when: an admin uploads two articles and a worker runs the import
        response = admin_client.post(
            "/admin/knowledge/importrun/upload/",
            {
                "files": [
                    SimpleUploadedFile("refunds.md", b"# Refunds\n\nRefunds take five days."),
                    SimpleUploadedFile("hours.txt", b"Opening hours\n\nNine to five."),
                ],
                "source": "uploads",
            },
        )
        assert response.status_code == 302
        run = ImportRun.objects.get()
        stored = s3.list_objects_v2(Bucket="deskpilot-media")["Contents"]
        finished = import_run_execute(import_run_id=run.id)
    # then: the files went to the bucket, never to a local folder, and were imported
    assert sorted(item["Key"].rsplit("/", 1)[1] for item in stored) == ["hours.txt", "refunds.md"]
    assert all(item["Key"].startswith("deskpilot/knowledge-uploads/") for item in stored)
    assert not settings.MEDIA_ROOT.exists()
    assert finished is not None and finished.state == ImportState.SUCCEEDED
    assert finished.added == 2
    assert sorted(Article.objects.values_list("external_id", flat=True)) == [
        "hours.txt",
        "refunds.md",
    ]


def test_two_uploaded_files_with_one_name_are_refused(admin_client, settings, tmp_path):
    # given
    settings.MEDIA_ROOT = tmp_path
    files = [SimpleUploadedFile("faq.md", b"# A"), SimpleUploadedFile("faq.md", b"# B")]
    # when
    response = admin_client.post(
        "/admin/knowledge/importrun/upload/", {"files": files, "source": "uploads"}
    )
    # then
    assert "two files have the same name" in response.content.decode()
    assert ImportRun.objects.count() == 0


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
