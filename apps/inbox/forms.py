"""Inbox forms: each action posts what the agent saw (the version) with what they want."""

from __future__ import annotations

from django import forms
from django.conf import settings

from apps.accounts.models import User
from apps.tickets.models import Ticket, TicketStatus


def ticket_version(ticket: Ticket, last_message_id: int) -> str:
    """What an agent's decision rests on: the status, the assignee and the last message.

    Not `updated_at`: the copilot records triage results on the ticket while an agent reads
    it, and that must not turn the agent's reply into a conflict. A new draft is checked
    separately (draft actions carry the draft's id).
    """
    return f"{ticket.status}.{ticket.assignee_id or 0}.{last_message_id}"


class SeenStateForm(forms.Form):
    """The ticket as the agent saw it when they opened the page."""

    version = forms.CharField(widget=forms.HiddenInput, max_length=80)
    seen_status = forms.ChoiceField(choices=TicketStatus.choices, widget=forms.HiddenInput)
    seen_message_id = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    @classmethod
    def initial_for(cls, ticket: Ticket, last_message_id: int) -> dict[str, object]:
        return {
            "version": ticket_version(ticket, last_message_id),
            "seen_status": ticket.status,
            "seen_message_id": last_message_id,
        }


class ReplyForm(SeenStateForm):
    # The "Save as internal note" button: the text stays with the team.
    as_note = forms.BooleanField(required=False)
    body = forms.CharField(
        label="Reply",
        strip=False,
        max_length=settings.MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "Write a reply to the customer…"}),
        error_messages={"required": "Write a reply before sending."},
    )

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Write a reply before sending.")
        if "\x00" in body:
            raise forms.ValidationError("The reply contains a NUL character; remove it.")
        return body


class AssignForm(SeenStateForm):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"),
        required=False,
        empty_label="Nobody (unassign)",
        label="Assign to",
    )


class ReasonForm(SeenStateForm):
    reason = forms.CharField(required=False, max_length=500, label="Note (optional)")


class IntentForm(SeenStateForm):
    intent = forms.ChoiceField(label="Intent", choices=())

    def __init__(self, *args: object, intents: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["intent"]
        assert isinstance(field, forms.ChoiceField)  # declared just above
        field.choices = [(name, name) for name in intents]


class DraftForm(SeenStateForm):
    """An action on the draft the agent saw (its id: a newer draft makes it a conflict)."""

    draft_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class DraftEditForm(DraftForm):
    body = forms.CharField(
        label="Draft",
        strip=False,
        max_length=settings.MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={"required": "The reply is empty."},
    )

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("The reply is empty.")
        if "\x00" in body:
            raise forms.ValidationError("The reply contains a NUL character; remove it.")
        return body


class DraftRejectForm(DraftForm):
    reason = forms.CharField(
        label="Why is it wrong?",
        max_length=1000,
        error_messages={"required": "Say why the draft is rejected: it teaches the copilot."},
    )


class AssistForm(SeenStateForm):
    """Switch the copilot's drafts for a ticket on (1) or off (0)."""

    enabled = forms.TypedChoiceField(
        choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1"
    )
