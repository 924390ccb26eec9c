from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    AGENT = "agent", "Agent"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    """A person who works in Deskpilot: an agent in the inbox or an admin."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)

    @property
    def is_deskpilot_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser
