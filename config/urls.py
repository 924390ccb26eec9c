from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import health, views
from apps.operations.views import insights_page, metrics_view

urlpatterns = [
    # People who open the bare address are agents: send them to their inbox.
    path("", RedirectView.as_view(pattern_name="inbox:queue", permanent=False)),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    # Browsers ask for /favicon.ico on pages that name no icon (the API docs, a JSON answer).
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("apps.api.urls")),
    path("widget/api/", include("apps.widget.urls")),
    path("widget/", include("apps.widget.page_urls")),
    path("inbox/insights/", insights_page, name="insights"),
    path("inbox/", include("apps.inbox.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
