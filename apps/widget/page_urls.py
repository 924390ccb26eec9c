"""Pages of the widget app (mounted at /widget/): the demo customer site."""

from django.urls import path

from apps.widget.demo import demo_page

app_name = "widget_pages"

urlpatterns = [
    path("demo/", demo_page, name="demo"),
]
