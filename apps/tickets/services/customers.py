"""Customers: found by external id, else email, else created; safe under concurrency."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.exceptions import ConflictError, ValidationError
from apps.tickets.models import (
    Channel,
    Customer,
    CustomerIdentity,
)


def _email_clean(email: str, *, field: str) -> str:
    email = email.strip().lower()
    if not email:
        return ""
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationError(f"{field} is not a valid email address", field=field) from None
    return email


def customer_resolve(
    *,
    email: str = "",
    name: str = "",
    external_id: str = "",
    channel: Channel | None = None,
    identifier: str = "",
) -> Customer:
    """The customer known by `external_id`, else `email`, else a new one.

    A name or a missing email/external id is filled in on an existing customer. An email that
    already belongs to a customer with another external id is a conflict. Safe under
    concurrency: a creation that loses a unique-constraint race re-reads the winner.
    """
    email = _email_clean(email, field="customer.email")
    external_id = external_id.strip()
    name = name.strip()
    for attempt in range(2):
        customer = _customer_find(email=email, external_id=external_id)
        if customer is None:
            try:
                with transaction.atomic():
                    customer = Customer.objects.create(
                        email=email, name=name, external_id=external_id
                    )
            except IntegrityError:
                if attempt == 0:
                    continue  # created meanwhile by a concurrent request: find it now
                raise
        else:
            _customer_complete(customer, email=email, name=name, external_id=external_id)
        if channel is not None and identifier:
            _customer_identity_add(customer, channel=channel, identifier=identifier)
        return customer
    raise AssertionError("unreachable")  # pragma: no cover


def _customer_find(*, email: str, external_id: str) -> Customer | None:
    if external_id:
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is not None:
            return customer
    if email:
        customer = Customer.objects.filter(email=email).first()
        if customer is not None and external_id and customer.external_id:
            raise ConflictError(
                f"customer.email {email!r} belongs to a customer with another external_id",
                field="customer.email",
            )
        return customer
    return None


def _customer_complete(customer: Customer, *, email: str, name: str, external_id: str) -> None:
    updates: dict[str, str] = {}
    if email and not customer.email:
        if Customer.objects.filter(email=email).exclude(pk=customer.pk).exists():
            raise ConflictError(
                f"customer.email {email!r} belongs to another customer", field="customer.email"
            )
        updates["email"] = email
    if external_id and not customer.external_id:
        updates["external_id"] = external_id
    if name and not customer.name:
        updates["name"] = name
    if updates:
        Customer.objects.filter(pk=customer.pk).update(**updates, updated_at=timezone.now())
        for field, value in updates.items():
            setattr(customer, field, value)


def _customer_identity_add(customer: Customer, *, channel: Channel, identifier: str) -> None:
    CustomerIdentity.objects.get_or_create(
        channel=channel, identifier=identifier[:254], defaults={"customer": customer}
    )


def customer_details_update(*, customer: Customer, email: str, name: str) -> None:
    """Replace the customer's name and email with the ones a trusted source gives (a signed
    widget identity: the site's current word on its user); an empty value changes nothing.
    An address another customer has stays theirs (the unique constraint says so too)."""
    updates: dict[str, str] = {}
    if name and name != customer.name:
        updates["name"] = name
    if (
        email
        and email != customer.email
        and not Customer.objects.filter(email=email).exclude(pk=customer.pk).exists()
    ):
        updates["email"] = email
    if not updates:
        return
    try:
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(**updates, updated_at=timezone.now())
    except IntegrityError:
        # The address was taken meanwhile: keep the rest of the update.
        updates.pop("email", None)
        if not updates:
            return
        Customer.objects.filter(pk=customer.pk).update(**updates, updated_at=timezone.now())
    for field, value in updates.items():
        setattr(customer, field, value)
