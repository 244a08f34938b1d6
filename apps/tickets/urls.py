"""The agent console, mounted at /console/."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from apps.accounts import views as account_views
from apps.tickets import api, views

urlpatterns = [
    path("", views.queue, name="console-queue"),
    path("login/", account_views.ConsoleLoginView.as_view(), name="console-login"),
    path("logout/", LogoutView.as_view(next_page="console-login"), name="console-logout"),
    path("tickets/<str:number>/", views.ticket_detail, name="console-ticket"),
    path("tickets/<str:number>/actions/", views.ticket_action, name="console-ticket-action"),
    path("dashboard/", views.dashboard, name="console-dashboard"),
    path("agents/", account_views.agents, name="console-agents"),
    path(
        "agents/<int:user_id>/deactivate/",
        account_views.agent_deactivate_view,
        name="console-agent-deactivate",
    ),
    path("api/queue/", api.queue, name="console-api-queue"),
    path("api/tickets/<str:number>/messages/", api.ticket_messages, name="console-api-ticket-messages"),
    path("api/dashboard/", api.dashboard, name="console-api-dashboard"),
]
