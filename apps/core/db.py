"""Database connection housekeeping that views and workers share."""

from __future__ import annotations

from django.db import connections


def connections_release() -> None:
    """Give this thread's database connections back (to the pool, with DATABASE_POOL) now,
    not when the request ends: a streaming response may stay open for minutes, and each
    open stream would otherwise hold a connection that every other request waits for.

    A connection inside a transaction is left alone (closing it would end the transaction;
    a test's own transaction wraps its requests).
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def in_transaction(using: str = "default") -> bool:
    """Whether the code runs inside a transaction.atomic block of its own (a test's wrapping
    transaction, which Django marks, does not count)."""
    return any(
        not getattr(block, "_from_testcase", False) for block in connections[using].atomic_blocks
    )
