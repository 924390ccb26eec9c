from django.apps import AppConfig


class CopilotConfig(AppConfig):
    name = "apps.copilot"
    label = "copilot"
    verbose_name = "Copilot pipeline"

    def ready(self) -> None:
        from apps.copilot.knowledge_scan import articles_scan_after_import
        from apps.copilot.tasks import intent_links_learn_after_import
        from apps.knowledge.signals import knowledge_imported

        knowledge_imported.connect(
            intent_links_learn_after_import, dispatch_uid="copilot.links_after_import"
        )
        knowledge_imported.connect(
            articles_scan_after_import, dispatch_uid="copilot.injection_scan_after_import"
        )
