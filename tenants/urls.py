from django.contrib.auth import views as auth_views
from django.urls import path

from smarteros.login_throttle import ThrottledLoginView
from tenants import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", ThrottledLoginView.as_view(template_name="login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
