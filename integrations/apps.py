from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from integrations.n8n import triggers

        triggers.consumers_follow_triggers()
