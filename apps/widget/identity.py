"""Who a widget visitor is: a website vouches for its signed-in user with a signature.

The site's server signs "{user_id}\\n{email}\\n{name}" with the widget key's identity secret
(docs/widget-identity.md) and the page hands the values and the signature to the widget. A
matching signature makes the visitor that customer, found by external id; without one, what the
page or the visitor said is kept on the first message as an unverified claim and never used to
find a customer (anyone can type anyone's address into a widget).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from apps.accounts.models import WidgetKey
from apps.accounts.services import widget_identity_signature_matches
from apps.core.exceptions import ConflictError, PermissionDeniedError
from apps.tickets.models import Channel, Customer
from apps.tickets.services import customer_details_update, customer_resolve

DOCS = "docs/widget-identity.md"


class IdentitySignatureMismatchError(PermissionDeniedError):
    code = "identity_signature_mismatch"


class IdentityRequiredError(PermissionDeniedError):
    code = "identity_required"


@dataclass(frozen=True)
class VisitorIdentity:
    """What a conversation start said about the visitor. Verified: the site signed it."""

    user_id: str = ""
    email: str = ""
    name: str = ""
    is_verified: bool = False

    def metadata(self) -> dict[str, Any]:
        """How the first message records it: `identity` when verified, else `claimed_*`."""
        if self.is_verified:
            return {
                "identity": {
                    "verified": True,
                    "user_id": self.user_id,
                    "email": self.email,
                    "name": self.name,
                }
            }
        claims = {
            "claimed_name": self.name,
            "claimed_email": self.email,
            "claimed_user_id": self.user_id,
        }
        return {key: value for key, value in claims.items() if value}


def visitor_identity_check(
    *, widget_key: WidgetKey, user_id: str, email: str, name: str, user_hash: str
) -> VisitorIdentity:
    """The visitor's identity, verified when `user_hash` is the key's signature of it.

    The values are the exact strings the page passed (the serializer refused line breaks and
    malformed ones). Raises IdentitySignatureMismatchError when a hash was sent and does not
    match, and IdentityRequiredError when the key requires a signature and none came. Reads
    and writes nothing but the key.
    """
    if user_hash:
        if not widget_identity_signature_matches(
            widget_key=widget_key, user_id=user_id, email=email, name=name, user_hash=user_hash
        ):
            raise IdentitySignatureMismatchError(
                "the identity signature (user_hash) does not match user_id, email and name: "
                "sign exactly the values the page passes, with this widget key's current "
                f"identity secret (see {DOCS})",
                field="identity.hash",
            )
        return VisitorIdentity(user_id=user_id, email=email, name=name, is_verified=True)
    if widget_key.identity_required:
        raise IdentityRequiredError(
            "this chat is for signed-in visitors only: sign in on the site and try again "
            f"(the site must pass data-user-id and data-user-hash, see {DOCS})",
            field="identity",
        )
    return VisitorIdentity(user_id=user_id, email=email, name=name, is_verified=False)


def visitor_customer_resolve(*, identity: VisitorIdentity) -> Customer:
    """The customer a new widget conversation belongs to.

    Verified: the customer with external id `user_id`, created with the signed email and
    name, or brought up to date with them. Otherwise a new anonymous customer (the claims are
    not stored on it). Either way the customer gets a fresh widget identity. Call inside the
    conversation's transaction.
    """
    identifier = f"visitor-{uuid.uuid4().hex}"
    if not identity.is_verified:
        return customer_resolve(channel=Channel.WIDGET, identifier=identifier)
    email = identity.email.strip().lower()
    try:
        customer = customer_resolve(
            external_id=identity.user_id,
            email=email,
            name=identity.name,
            channel=Channel.WIDGET,
            identifier=identifier,
        )
    except ConflictError:
        # The address belongs to another customer (with another external id): the site vouches
        # for this user id, so the conversation is theirs; the address stays on the message.
        customer = customer_resolve(
            external_id=identity.user_id,
            name=identity.name,
            channel=Channel.WIDGET,
            identifier=identifier,
        )
    customer_details_update(customer=customer, email=email, name=identity.name.strip())
    return customer
