"""Test overrides: the same settings module, with a few values a test run needs."""

from config.settings import *  # noqa: F403

DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES["default"]["KEY_PREFIX"] = "deskpilot-test"  # noqa: F405
# Static files come from the finders in tests; nothing is collected. STATIC_ROOT points
# where nothing is, or whitenoise would serve a copy left by an earlier `collectstatic`.
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = DESKPILOT_HOME / "test" / "no-collected-static"  # noqa: F405
HEALTH_DETAILS = True
# django-axes needs the request in authenticate(), which the test client's login() does not
# pass; the lockout tests switch it on (tests/safety/test_throttle.py).
AXES_ENABLED = False
# The day's and month's LLM spend summed from the table on every call: tests roll the table
# back, not Redis (tests/llm/test_budgets.py turns the kept totals on and clears them).
LLM_SPEND_CACHE_SECONDS = 0
