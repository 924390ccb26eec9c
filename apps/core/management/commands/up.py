import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core.launcher import LaunchOptions, run
from config.env import ConfigurationError, env_int


class Command(BaseCommand):
    help = (
        "Run Deskpilot on this machine: embedded PostgreSQL and Redis (unless DATABASE_URL / "
        "REDIS_URL are set), migrations, then web, Celery worker and beat. Ctrl-C stops all."
    )
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--demo", action="store_true", help="load demo data and logins")
        parser.add_argument("--host", default=os.environ.get("DESKPILOT_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=None, help="web port (default 8000)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        try:
            port = options["port"] or env_int("DESKPILOT_PORT", 8000, minimum=1)
            launch = LaunchOptions(
                home=settings.DESKPILOT_HOME,
                base_dir=settings.BASE_DIR,
                host=options["host"],
                port=port,
                demo=options["demo"],
                web_workers=env_int("WEB_CONCURRENCY", 1, minimum=1),
                worker_concurrency=env_int("CELERY_CONCURRENCY", 2, minimum=1),
                pipeline_pool=settings.PIPELINE_WORKER_POOL,
                pipeline_concurrency=settings.PIPELINE_WORKER_CONCURRENCY,
                pipeline_processes=settings.PIPELINE_WORKER_PROCESSES,
            )
        except ConfigurationError as error:
            raise CommandError(str(error)) from None
        # The stream OutputWrapper wraps: private, so the stubs do not declare it.
        code = run(launch, out=self.stdout._out)  # type: ignore[arg-type]
        if code:
            sys.exit(code)
