from django.apps import AppConfig


class CopilotConfig(AppConfig):
    name = "apps.copilot"
    label = "copilot"
    verbose_name = "Copilot pipeline"
