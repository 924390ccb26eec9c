import pytest
from django.core.management import call_command

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_request_without_key_is_refused_with_401(api_client):
    # when
    response = api_client.get("/api/v1/ping")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_valid_key_is_accepted_and_named(api_key_client):
    # given
    client = api_key_client(scopes=("read",), name="crm")
    # when
    response = client.get("/api/v1/ping")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "api_key": "crm", "scopes": ["read"]}


@pytest.mark.parametrize(
    "header",
    ["Bearer dp_000000000000_wrong", "Bearer nonsense", "Token abc", "Bearer "],
)
def test_malformed_or_unknown_key_is_refused(api_client, header):
    # given
    api_client.credentials(HTTP_AUTHORIZATION=header)
    # when
    response = api_client.get("/api/v1/ping")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"]


def test_revoked_key_is_refused(api_client):
    # given
    api_key, key = api_key_create(name="old", scopes=["read"])
    api_key_revoke(api_key=api_key)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    # when
    response = api_client.get("/api/v1/ping")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "invalid or revoked API key"


def test_key_with_right_prefix_but_wrong_secret_is_refused(api_client):
    # given
    _, key = api_key_create(name="k", scopes=["read"])
    tampered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    # when
    response = api_client.get("/api/v1/ping")
    # then
    assert response.status_code == 401


def test_read_only_key_cannot_write(api_key_client):
    # given
    client = api_key_client(scopes=("read",))
    # when
    response = client.post("/api/v1/ping", {}, format="json")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "this API key lacks the 'write' scope"


def test_only_a_hash_of_the_key_is_stored():
    # when
    api_key, key = api_key_create(name="k", scopes=["read", "write"])
    # then
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert key.startswith(f"dp_{stored.prefix}_")
    assert key not in (stored.key_hash, stored.prefix, stored.name)
    assert len(stored.key_hash) == 64


def test_apikey_create_command_prints_the_key_once(capsys):
    # when
    call_command("apikey_create", "billing-system", "--scopes", "read")
    # then
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("dp_")
    assert "cannot be shown again" in err
    assert ApiKey.objects.get(name="billing-system").scopes == ["read"]


def test_apikey_create_command_refuses_unknown_scope():
    # when / then
    with pytest.raises(Exception, match="scopes must be a non-empty subset"):
        call_command("apikey_create", "x", "--scopes", "admin")
    assert not ApiKey.objects.exists()


def test_openapi_schema_and_docs_are_public(api_client):
    # when
    schema = api_client.get("/api/schema/")
    docs = api_client.get("/api/docs/")
    # then
    assert schema.status_code == 200
    assert b"/api/v1/ping" in schema.content
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
