from django.urls import path

from telemetry import views
from telemetry.topics import views as topic_views

urlpatterns = [
    path("telemetry/", views.telemetry_page, name="telemetry"),
    path("telemetry/data.json", views.telemetry_data, name="telemetry-data"),
    path("telemetry/trace/", views.telemetry_trace, name="telemetry-trace"),
    path("topics/", topic_views.topics_page, name="topics"),
    path("topics/view/", topic_views.topic_view, name="topic-view"),
    path("topics/message/", topic_views.message_detail, name="topic-message"),
    path("topics/replay/", topic_views.replay, name="topic-replay"),
    path("topics/replay-all/", topic_views.replay_all, name="topic-replay-all"),
    path("topics/export/", topic_views.export, name="topic-export"),
]
