from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        from integrations.subscribed import consumers_follow_integrations

        consumers_follow_integrations()
