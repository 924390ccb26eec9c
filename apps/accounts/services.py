from django.db import transaction

from apps.accounts.models import Role, User
from apps.core.exceptions import ValidationError


@transaction.atomic
def user_create(*, username: str, password: str, role: str = Role.AGENT, email: str = "") -> User:
    """Create a user with a role. Admins get Django admin access; agents the inbox only."""
    if role not in Role.values:
        raise ValidationError(f"unknown role {role!r}; use one of {', '.join(Role.values)}")
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"a user named {username!r} already exists", field="username")
    is_admin = role == Role.ADMIN
    return User.objects.create_user(
        username=username,
        password=password,
        email=email,
        role=role,
        is_staff=is_admin,
        is_superuser=is_admin,
    )
