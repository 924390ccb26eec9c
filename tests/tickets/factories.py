from datetime import UTC

import factory

from apps.tickets.models import Channel, Customer, Ticket, TicketStatus


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    name = factory.Sequence(lambda n: f"Customer {n}")


class TicketFactory(factory.django.DjangoModelFactory):
    """A bare ticket row in a given status (no messages, no events): for state machine tests."""

    class Meta:
        model = Ticket

    customer = factory.SubFactory(CustomerFactory)
    subject = factory.Sequence(lambda n: f"Question {n}")
    channel = Channel.API
    status = TicketStatus.NEW
    resolved_at = factory.Maybe(
        factory.LazyAttribute(lambda t: t.status == TicketStatus.RESOLVED),
        yes_declaration=factory.Faker("date_time", tzinfo=UTC),
        no_declaration=None,
    )
