"""Browser helpers for the agent console and the customer's widget."""

from __future__ import annotations


def console_signed_in(browser, base_url: str, username: str, password: str, errors: list[str]):  # type: ignore[no-untyped-def]
    """A new browser context with an agent signed in to the console, watching the empty queue; page
    errors go to ``errors``. ``window.sameDocument`` is set, so a test can tell the page never reloaded.
    Returns (context, page)."""
    context = browser.new_context()
    console = context.new_page()
    console.on("pageerror", lambda error: errors.append(f"console: {error}"))
    console.goto(f"{base_url}/console/")
    assert "/console/login/" in console.url
    console.fill("input[name=username]", username)
    console.fill("input[name=password]", password)
    console.click("button[type=submit]")
    console.wait_for_selector("#queue")
    assert "No tickets here." in console.inner_text("#queue")
    console.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    return context, console


def widget_opened(browser, base_url: str, kb_slug: str, errors: list[str]):  # type: ignore[no-untyped-def]
    """A new browser context with a customer on the demo shop page of ``kb_slug``, the chat widget open;
    page errors go to ``errors``. Returns (context, page)."""
    context = browser.new_context()
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(f"widget: {error}"))
    page.goto(f"{base_url}/demo/?kb={kb_slug}")
    page.click(".launcher")
    return context, page
