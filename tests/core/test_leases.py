"""Leases on running work (apps/core/leases.py), on the real Redis."""

from __future__ import annotations

import time

import pytest

from apps.core import leases
from apps.core.leases import lease, leases_alive


@pytest.fixture
def short_leases(settings):  # type: ignore[no-untyped-def]
    """Leases of 1 s (renewed every third of it), so expiry is seen within a test."""
    settings.RUN_LEASE_SECONDS = 1
    leases._this_process().wake.set()  # the renewer picks the new period up now


def test_a_lease_is_exclusive_renewed_while_held_and_given_back(short_leases):
    kind = f"test-{time.time_ns()}"
    with lease(kind, 1) as first:
        # when: a second holder asks for the same lease
        with lease(kind, 1) as second:
            pass
        # and: the holder keeps it past its 1 s expiry
        time.sleep(1.6)
        alive_while_held = leases_alive(kind, [1, 2])
    # then
    assert (first, second) == (True, False)
    assert alive_while_held == {1}
    assert leases_alive(kind, [1]) == set()  # given back at the end of the block


def test_a_lease_nobody_renews_expires(short_leases):
    # given: a lease taken by a holder that then died (its key written, never renewed)
    kind = f"test-{time.time_ns()}"
    client = leases._this_process().client
    client.set(f"{leases.KEY_PREFIX}{kind}:7", "dead-worker", ex=1)
    assert leases_alive(kind, [7]) == {7}
    # when
    time.sleep(1.3)
    # then: it expired, and the work can be taken again
    assert leases_alive(kind, [7]) == set()
    with lease(kind, 7) as taken:
        assert taken


def test_leases_fail_open_when_redis_is_away(short_leases, monkeypatch):
    # given: Redis refuses connections
    import redis

    holder = leases._this_process()
    monkeypatch.setattr(holder, "client", redis.Redis.from_url("redis://127.0.0.1:1/0"))
    # then: the work goes ahead, and nobody can say which leases are alive
    with lease("test", 1) as taken:
        assert taken
    assert leases_alive("test", [1]) is None
