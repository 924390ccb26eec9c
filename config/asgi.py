import logging
import os
import threading
import time

import django
from django.core.asgi import get_asgi_application

from apps.core.tracing import tracing_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A web request's queries are short: one stuck behind a lock must not hold the request.
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "30")
django.setup(set_prefix=False)
# Before the application is built: the Django instrumentation adds its middleware.
tracing_setup(process="web", django=True)
application = get_asgi_application()

logger = logging.getLogger("deskpilot.web")


def web_process_warm() -> None:
    """Loads the embedding model and the active classifier (WEB_WARM), in a background
    thread: the process serves at once, and a search or classify request arriving meanwhile
    waits only for what is left to load instead of the whole ~5 s."""
    from django.db import connection

    from apps.triage.services import triage_warm

    started = time.perf_counter()
    try:
        version = triage_warm()
    except Exception:
        # An optimisation only: the first request that needs them loads them instead.
        logger.warning("web warm-up failed", exc_info=True)
        return
    finally:
        connection.close()  # this thread's: it serves no request
    logger.info(
        "web process ready in %.1f s: embedding model and %s loaded",
        time.perf_counter() - started,
        f"classifier version {version}" if version else "no classifier (none active)",
    )


def _web_broker_options() -> None:
    """A customer's request publishes its message's task: short broker timeouts here."""
    from django.conf import settings

    from config.celery import app

    app.conf.broker_transport_options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "socket_timeout": settings.WEB_BROKER_SOCKET_TIMEOUT,
    }


def _warm_start() -> None:
    from django.conf import settings

    if settings.WEB_WARM:
        threading.Thread(target=web_process_warm, name="deskpilot-web-warm", daemon=True).start()


_web_broker_options()
_warm_start()
