import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from apps.accounts.access import request_user
from apps.accounts.models import User

pytestmark = pytest.mark.django_db


def test_request_user_is_the_signed_in_user():
    # given
    user = User.objects.create_user(username="agent-ann", password="x-123-long-enough")
    request = RequestFactory().get("/")
    request.user = user
    # when
    found = request_user(request)
    # then
    assert found == user


def test_request_user_refuses_an_anonymous_request():
    # given
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    # when / then
    with pytest.raises(PermissionDenied):
        request_user(request)
