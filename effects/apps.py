from django.apps import AppConfig


class EffectsConfig(AppConfig):
    name = "effects"
    verbose_name = "Outside effects"
    default_auto_field = "django.db.models.BigAutoField"
