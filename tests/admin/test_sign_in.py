"""Signing in to the admin page: one-time links, the session cookie, fixation, sign-out, page headers."""

import re
from pathlib import Path

import httpx

from tests.admin.page import csrf_of, login_link, signed_in
from tests.harness import Hub

TEMPLATES = Path(__file__).resolve().parents[2] / "hub" / "admin" / "templates"


def test_a_sign_in_link_works_once_and_no_session_sees_no_data(hub: Hub) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    link = login_link(hub)
    with httpx.Client(base_url=hub.url, timeout=30) as browser:
        anonymous = browser.get("/admin/")
        assert anonymous.status_code == 401
        assert "switchboard admin link" in anonymous.text
        assert "crm.objects.contacts.read" not in anonymous.text and "csrf_token" not in anonymous.text
        # An htmx request whose session is gone gets the page reloaded, which shows the sign-in help.
        swapped = browser.get("/admin/sections/audit", headers={"HX-Request": "true"})
        assert swapped.status_code == 401 and swapped.headers["HX-Refresh"] == "true" and not swapped.text

        first = browser.get(link)
        assert first.status_code == 303 and first.headers["location"] == "/admin/"
        cookie = first.headers["set-cookie"]
        assert cookie.startswith("sb_admin=sbs_")
        assert {"HttpOnly", "Path=/", "SameSite=lax"} <= {part.strip() for part in cookie.split(";")}
        assert "Secure" not in cookie  # the hub's base URL is http://127.0.0.1

        page = browser.get("/admin/")
        assert page.status_code == 200
        assert "crm.objects.contacts.read" in page.text
        assert re.search(r'<span class="badge status-active">active</span>', page.text)
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "style-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe" not in csp

        with httpx.Client(base_url=hub.url, timeout=30) as other:
            again = other.get(link)
            assert again.status_code == 401
            assert "does not work" in again.text and "switchboard admin link" in again.text
            assert "set-cookie" not in again.headers
            assert other.get("/admin/login", params={"token": "sbl_made-up"}).status_code == 401
            assert other.get("/admin/login").status_code == 401


def test_a_session_id_from_before_sign_in_is_never_accepted(hub: Hub) -> None:
    planted = "sbs_" + "A" * 43
    with httpx.Client(base_url=hub.url, timeout=30) as browser:
        assert browser.get("/admin/", headers={"Cookie": f"sb_admin={planted}"}).status_code == 401
        signed = browser.get(login_link(hub), headers={"Cookie": f"sb_admin={planted}"})
        assert signed.status_code == 303
        fresh = signed.cookies["sb_admin"]
        assert fresh != planted
        assert browser.get("/admin/", headers={"Cookie": f"sb_admin={planted}"}).status_code == 401
        assert browser.get("/admin/", headers={"Cookie": f"sb_admin={fresh}"}).status_code == 200
        # Signing in again in the same browser ends the session it held before.
        again = browser.get(login_link(hub), headers={"Cookie": f"sb_admin={fresh}"})
        assert again.status_code == 303 and again.cookies["sb_admin"] != fresh
        assert browser.get("/admin/", headers={"Cookie": f"sb_admin={fresh}"}).status_code == 401


def test_sign_out_needs_the_csrf_token_and_ends_the_session(hub: Hub) -> None:
    with signed_in(hub) as browser:
        session = browser.cookies["sb_admin"]
        csrf = csrf_of(browser)
        refused = browser.post("/admin/logout")
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert browser.get("/admin/").status_code == 200
        out = browser.post("/admin/logout", data={"csrf_token": csrf})
        assert out.status_code == 200 and "You are signed out" in out.text
        assert 'sb_admin=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    with httpx.Client(base_url=hub.url, timeout=30) as stale:
        assert stale.get("/admin/", headers={"Cookie": f"sb_admin={session}"}).status_code == 401


def test_static_assets_are_an_allow_list(hub: Hub) -> None:
    with httpx.Client(base_url=hub.url, timeout=30) as browser:
        htmx_js = browser.get("/admin/static/htmx.min.js")
        assert htmx_js.status_code == 200 and htmx_js.headers["content-type"].startswith("text/javascript")
        assert b"htmx" in htmx_js.content
        assert browser.get("/admin/static/admin.css").headers["content-type"].startswith("text/css")
        for name in ("pages.py", "..%2Fpages.py", "%2E%2E%2Frendering.py", "missing.js"):
            assert browser.get(f"/admin/static/{name}").status_code == 404


def test_templates_need_no_inline_script_or_style() -> None:
    # What lets the Content-Security-Policy forbid inline code outright.
    for template in TEMPLATES.glob("*.html"):
        text = re.sub(r"\{#.*?#\}", "", template.read_text(), flags=re.DOTALL)  # Jinja comments render nothing
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", text, re.IGNORECASE), template.name
        assert "|safe" not in text, template.name
