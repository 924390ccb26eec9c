"""Public endpoints of the chat widget: start a conversation, post and read messages.

Every request names a widget key in the URL; the browser's Origin must be one of the key's
allowed origins (also for the CORS preflight, which is answered with that origin only).
Starting a conversation returns a signed visitor token; the other endpoints need it as
`Authorization: Bearer <token>`. A start may carry the site's signed `identity` of its
signed-in user (apps/widget/identity.py, docs/widget-identity.md); the token reaches the new
conversation only, whoever the visitor is.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import WidgetKey
from apps.core.exceptions import NotFoundError, PermissionDeniedError
from apps.core.rest import (
    StrictCharField,
    StrictEmailField,
    StrictJSONParser,
    StrictSerializer,
)
from apps.safety.throttle import client_ip, limit_hit
from apps.tickets.models import ActorKind, AuthorKind, Channel, Message, Ticket
from apps.tickets.selectors import message_list_for_customer
from apps.tickets.services import Actor, message_add
from apps.widget.identity import visitor_identity_check
from apps.widget.services import widget_conversation_start
from apps.widget.tokens import Visitor, VisitorTokenError, visitor_token_issue, visitor_token_read

PREFLIGHT_MAX_AGE = 600
PUBLIC_KEY_PATTERN = re.compile(r"^wk_[A-Za-z0-9_-]{1,61}$")


CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
USER_HASH_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")


def _no_control_characters(value: str) -> None:
    # The signed message joins the fields with line breaks: none may hold one.
    if CONTROL_CHARACTERS.search(value):
        raise serializers.ValidationError("must not contain line breaks or control characters")


def _user_hash_shape(value: str) -> None:
    if value and not USER_HASH_PATTERN.match(value):
        raise serializers.ValidationError(
            "must be 64 hexadecimal characters: the HMAC-SHA256 of the identity, as hex"
        )


class VisitorIdentitySerializer(StrictSerializer):
    """Who the site says the visitor is; the exact strings it signed (so nothing is trimmed)."""

    user_id = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        trim_whitespace=False,
        validators=[_no_control_characters],
    )
    email = StrictEmailField(
        required=False,
        allow_blank=True,
        max_length=254,
        trim_whitespace=False,
        validators=[_no_control_characters],
    )
    name = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        trim_whitespace=False,
        validators=[_no_control_characters],
    )
    hash = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, validators=[_user_hash_shape]
    )

    def validate(self, attrs: dict[str, str]) -> dict[str, str]:
        user_id = attrs.get("user_id", "")
        if user_id != user_id.strip():
            raise serializers.ValidationError({"user_id": "must not start or end with spaces"})
        if attrs.get("hash") and not user_id:
            raise serializers.ValidationError(
                {"user_id": "is required with a hash: the signature is of a user id"}
            )
        return attrs


class ConversationStartSerializer(StrictSerializer):
    body = StrictCharField(trim_whitespace=False)
    # What the visitor typed, if the site asks: kept as unverified claims.
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    email = StrictEmailField(required=False, allow_blank=True, max_length=254)
    identity = VisitorIdentitySerializer(required=False)


class MessagePostSerializer(StrictSerializer):
    body = StrictCharField(trim_whitespace=False)


class SinceSerializer(StrictSerializer):
    since = serializers.IntegerField(required=False, min_value=0, max_value=2**63 - 1)


class WidgetMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ("id", "author_kind", "body", "created_at")
        read_only_fields = fields


class VisitorTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[None, Visitor] | None:
        if request.method == "OPTIONS":
            return None  # a CORS preflight carries no credentials
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword or not token.strip():
            raise exceptions.NotAuthenticated("send the visitor token as 'Bearer <token>'")
        try:
            visitor = visitor_token_read(token=token.strip(), widget_key=_view_widget_key(request))
        except VisitorTokenError as error:
            raise exceptions.AuthenticationFailed(error.message) from None
        return None, visitor

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def _view_widget_key(request: Request) -> WidgetKey:
    # Authentication runs inside WidgetView.initial, after it checked the widget key; DRF
    # hands authenticators the request only, and the view through its parser context.
    view: WidgetView = request.parser_context["view"]
    return view.widget_key


def request_visitor(request: Request) -> Visitor:
    """The visitor `VisitorTokenAuthentication` read from the token. `HasVisitor` lets no
    other request reach a handler, so a missing one is refused, never acted on."""
    visitor = request.auth
    if not isinstance(visitor, Visitor):
        raise exceptions.NotAuthenticated("send the visitor token as 'Bearer <token>'")
    return visitor


class HasVisitor(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return request.method == "OPTIONS" or isinstance(request.auth, Visitor)


class WidgetView(APIView):
    """Checks the widget key and the Origin before anything else; adds CORS headers."""

    parser_classes = [StrictJSONParser]
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    allowed_methods_for_cors = "GET, POST, OPTIONS"
    # Set by `initial` for this request (Django makes a view instance per request).
    widget_key: WidgetKey
    cors_origin: str = ""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.widget_key = self._widget_key(kwargs["public_key"])
        origin = request.headers.get("Origin", "")
        if not origin and request.headers.get("Sec-Fetch-Site") == "same-origin":
            # Browsers omit Origin on same-origin GETs (a page served by Deskpilot itself, like
            # the demo); a cross-origin request always carries it, so this opens nothing.
            origin = f"{request.scheme}://{request.get_host()}"
        if not self.widget_key.allows_origin(origin):
            raise PermissionDeniedError(
                f"origin {origin[:200]!r} is not allowed for this widget"
                if origin
                else "the Origin header is missing"
            )
        self.cors_origin = origin
        super().initial(request, *args, **kwargs)

    # APIView.options takes DRF's Request (its stub ignores the same clash with View's).
    def options(  # type: ignore[override]
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response:
        # The preflight: reached only when `initial` accepted the Origin.
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Access-Control-Allow-Methods"] = self.allowed_methods_for_cors
        response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.cors_origin:
            response["Access-Control-Allow-Origin"] = self.cors_origin
        response["Vary"] = "Origin"
        return response

    @staticmethod
    def _widget_key(public_key: str) -> WidgetKey:
        widget_key = None
        if PUBLIC_KEY_PATTERN.match(public_key):
            widget_key = WidgetKey.objects.filter(public_key=public_key, is_active=True).first()
        if widget_key is None:
            raise NotFoundError("unknown or disabled widget key", field="public_key")
        return widget_key


@extend_schema(exclude=True)
class ConversationStartView(WidgetView):
    allowed_methods_for_cors = "POST, OPTIONS"

    def post(self, request: Request, public_key: str) -> Response:
        payload = ConversationStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        widget_key = self.widget_key
        address = client_ip(request)
        limit_hit("widget_ip_conversation", str(widget_key.pk), address)
        limit_hit("widget_ip_message", str(widget_key.pk), address)
        given = data.get("identity") or {}
        user_hash = given.get("hash", "")
        # A signature covers the identity's own fields only; without one, those and the
        # name and address the visitor typed are all claims.
        typed = {} if user_hash else data
        identity = visitor_identity_check(
            widget_key=widget_key,
            user_id=given.get("user_id", ""),
            email=given.get("email", "") or typed.get("email", ""),
            name=given.get("name", "") or typed.get("name", ""),
            user_hash=user_hash,
        )
        ticket, message = widget_conversation_start(
            widget_key=widget_key, origin=self.cors_origin, body=data["body"], identity=identity
        )
        token, expires_at = visitor_token_issue(
            visitor=Visitor(
                widget_key_id=widget_key.pk, ticket_id=ticket.pk, customer_id=ticket.customer_id
            )
        )
        return Response(
            {
                "conversation_id": ticket.pk,
                "visitor_token": token,
                "token_expires_at": expires_at.isoformat(),
                "message": WidgetMessageSerializer(message).data,
            },
            status=status.HTTP_201_CREATED,
        )


def visitor_ticket(visitor: Visitor) -> Ticket:
    """The widget conversation the visitor's token is for; 404 when it no longer exists."""
    ticket = Ticket.objects.filter(
        pk=visitor.ticket_id, customer_id=visitor.customer_id, channel=Channel.WIDGET
    ).first()
    if ticket is None:
        raise NotFoundError("this conversation no longer exists", field="conversation")
    return ticket


@extend_schema(exclude=True)
class ConversationMessagesView(WidgetView):
    authentication_classes = [VisitorTokenAuthentication]
    permission_classes = [HasVisitor]

    def get(self, request: Request, public_key: str) -> Response:
        query = SinceSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        ticket = visitor_ticket(request_visitor(request))
        messages = message_list_for_customer(
            ticket=ticket, after_id=query.validated_data.get("since")
        )
        return Response(
            {
                "conversation_id": ticket.pk,
                "status": ticket.status,
                "messages": WidgetMessageSerializer(messages[:500], many=True).data,
            }
        )

    def post(self, request: Request, public_key: str) -> Response:
        payload = MessagePostSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        visitor = request_visitor(request)
        limit_hit("widget_visitor_message", str(visitor.ticket_id))
        limit_hit("widget_ip_message", str(self.widget_key.pk), client_ip(request))
        ticket = visitor_ticket(visitor)
        message = message_add(
            ticket=ticket,
            author_kind=AuthorKind.CUSTOMER,
            body=payload.validated_data["body"],
            channel=Channel.WIDGET,
            actor=Actor(ActorKind.CUSTOMER, str(visitor.customer_id)),
        )
        return Response(WidgetMessageSerializer(message).data, status=status.HTTP_201_CREATED)
