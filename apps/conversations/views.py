from __future__ import annotations

from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

WIDGET_JS = Path(__file__).resolve().parent / "static" / "widget" / "widget.js"


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    """The one script a shop embeds. Served from a stable URL (the embed tag never changes),
    so it is cached briefly rather than forever."""
    response = HttpResponse(WIDGET_JS.read_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def demo_shop(request: HttpRequest) -> HttpResponse:
    """A demo shop page that embeds the widget exactly as a customer's site would. A logged-in
    customer is shown with ``?customer_id=C123&customer_signature=HEX``: the page only passes them
    on (a real shop's server computes the signature; this page never signs anything)."""
    language = "zh" if request.GET.get("lang", "").startswith("zh") else "en"
    context = {
        "kb": request.GET.get("kb", "demo-shop"),
        "lang": language,
        "customer_id": request.GET.get("customer_id", ""),
        "customer_signature": request.GET.get("customer_signature", ""),
    }
    return render(request, "demo/shop.html", context)
