"""Console pages for admins: the agents, a new agent (its generated password shown once), deactivation;
and the console's sign-in page, which agents use (they have no Django admin access)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.decorators import staff_page
from apps.accounts.roles import Role
from apps.accounts.selectors import agent_list
from apps.accounts.services import AccountError, agent_create, agent_deactivate
from apps.tickets.views import console_context


class ConsoleLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("console-queue")


@require_http_methods(["GET", "POST"])
@staff_page(Role.ADMIN)
def agents(request: HttpRequest) -> HttpResponse:
    """The list, and (POST) a new agent: the password is in this one response and stored only as a hash."""
    created = None
    status = 200
    if request.method == "POST":
        try:
            created = agent_create(username=request.POST.get("username", ""))
            status = 201
        except AccountError as error:
            messages.error(request, f"Not created: {error}.")
            status = 400
    context = {**console_context(request), "agents": agent_list(), "created": created}
    return render(request, "accounts/agents.html", context, status=status)


@require_POST
@staff_page(Role.ADMIN)
def agent_deactivate_view(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id)
    try:
        agent_deactivate(user=user, actor=request.user)
        messages.success(request, f"{user.get_username()} can no longer sign in.")
    except AccountError as error:
        messages.error(request, f"Not deactivated: {error}.")
    return redirect("console-agents")
