from django.apps import AppConfig


class SmarterOSConfig(AppConfig):
    name = "smarteros"
    verbose_name = "SmarterOS platform"
