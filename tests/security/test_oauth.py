"""Attacks on connecting an account: a replayed callback, a state used twice or made up, an authorization code
injected into another connect (its PKCE verifier does not match, so the provider refuses it), and every
redirect the hub answers with staying on the hub or going to the configured provider."""

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from hub.demo import approve_consent
from tests.security.stack import Stack

_EVIL = "https://evil.example/steal"
# Parameters that open redirects hide in elsewhere; the hub must ignore every one of them.
_REDIRECT_PARAMS = {
    "next": _EVIL,
    "return_to": _EVIL,
    "redirect": _EVIL,
    "redirect_uri": _EVIL,
    "redirect_url": _EVIL,
    "url": "//evil.example",
    "continue": _EVIL,
}


def _begin(stack: Stack, name: str, **extra: str) -> str:
    with stack.hub.admin() as admin:
        start = admin.get("/connect/hubspot", params={"name": name, "scopes": "crm.contacts.read", **extra})
    assert start.status_code == 302, start.text
    location: str = start.headers["location"]
    return location


def _consent(authorize_url: str) -> str:
    with httpx.Client(timeout=30) as browser:
        return approve_consent(browser, authorize_url)


def _code_exchanges(stack: Stack) -> int:
    return int(stack.hubspot.stats()["token_requests"].get("authorization_code", 0))


def _connection(stack: Stack, name: str) -> dict[str, str] | None:
    with stack.hub.admin() as admin:
        found = [c for c in admin.get("/admin/api/connections").json() if c["name"] == name]
    return found[0] if found else None


def _refused(answer: httpx.Response, status: int = 400, says: str = "state") -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "location" not in answer.headers
    assert says in answer.json()["detail"], answer.json()


def _on_hub(location: str) -> None:
    """A redirect that keeps the browser on the hub: a path, never another host (nor `//host`)."""
    assert location.startswith("/") and not location.startswith("//"), location
    assert "evil" not in location, location


def test_a_callback_works_once_and_its_state_never_again(stack: Stack) -> None:
    callback = _consent(_begin(stack, "oa-replay"))
    exchanges = _code_exchanges(stack)
    with stack.hub.client() as browser:
        done = browser.get(callback)
        assert done.status_code == 303, done.text
        _on_hub(done.headers["location"])
        _refused(browser.get(callback))  # the same code and state again
        # The spent state with a fresh, valid code from another connect is refused too, before any exchange,
        # and that code stays good for its own state.
        other = _consent(_begin(stack, "oa-replay-2"))
        spent_state = parse_qs(urlsplit(callback).query)["state"][0]
        fresh_code = parse_qs(urlsplit(other).query)["code"][0]
        _refused(browser.get("/oauth/callback", params={"state": spent_state, "code": fresh_code}))
        assert _code_exchanges(stack) == exchanges + 1
        assert browser.get(other).status_code == 303
    assert _code_exchanges(stack) == exchanges + 2
    assert _connection(stack, "oa-replay-2") is not None


def test_unknown_missing_or_malformed_state_is_refused(stack: Stack) -> None:
    exchanges = _code_exchanges(stack)
    with stack.hub.client() as browser:
        for params in (
            {"state": "x" * 43, "code": "made-up"},
            {"code": "made-up"},
            {"state": "", "code": "made-up"},
            {"state": "' OR 1=1 --", "code": "x"},
        ):
            _refused(browser.get("/oauth/callback", params=params))
        too_long = browser.get("/oauth/callback", params={"state": "x" * 5000, "code": "x"})
        assert too_long.status_code == 422 and too_long.json()["type"] == "invalid_arguments"
    assert _code_exchanges(stack) == exchanges


def test_a_code_injected_into_another_connect_fails_its_pkce_check(stack: Stack) -> None:
    # The admin's connect yields a code; an attacker who intercepts it starts their own connect and presents
    # the stolen code with their own state. The hub sends the attacker's verifier, which the provider refuses.
    stolen = parse_qs(urlsplit(_consent(_begin(stack, "oa-victim"))).query)
    attacker_state = parse_qs(urlsplit(_begin(stack, "oa-attacker")).query)["state"][0]
    issued = len(stack.hubspot.issued_tokens())
    exchanges = _code_exchanges(stack)
    with stack.hub.client() as browser:
        injected = browser.get("/oauth/callback", params={"state": attacker_state, "code": stolen["code"][0]})
        _refused(injected, says="refused the authorization code")
        assert _code_exchanges(stack) == exchanges + 1
        assert len(stack.hubspot.issued_tokens()) == issued, "the provider issued a token for a stolen code"
        assert _connection(stack, "oa-attacker") is None
        # The provider burnt the code on first presentation: the victim's own callback now fails cleanly too.
        _refused(browser.get("/oauth/callback", params={k: v[0] for k, v in stolen.items()}), says="refused")
    assert _connection(stack, "oa-victim") is None


def test_a_denied_consent_spends_the_state(stack: Stack) -> None:
    state = parse_qs(urlsplit(_begin(stack, "oa-denied")).query)["state"][0]
    with stack.hub.client() as browser:
        _refused(browser.get("/oauth/callback", params={"state": state, "error": "access_denied"}), says="did not")
        _refused(browser.get("/oauth/callback", params={"state": state, "code": "late"}))
    assert _connection(stack, "oa-denied") is None


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_no_redirect_leaves_the_hub_or_the_configured_provider(stack: Stack) -> None:
    hub = stack.hub
    # /connect sends the browser to the configured provider only, with the hub's own redirect URI.
    authorize = _begin(stack, "oa-redirects", **_REDIRECT_PARAMS)
    assert authorize.startswith(f"{stack.hubspot.url}/oauth/authorize?"), authorize
    query = parse_qs(urlsplit(authorize).query)
    assert query["redirect_uri"] == [f"{hub.url}/oauth/callback"]
    assert "evil" not in authorize
    # The callback sends it back to the admin page, whatever else the query carries.
    callback = _consent(authorize)
    with hub.client() as browser:
        done = browser.get(f"{callback}&{urlencode(_REDIRECT_PARAMS)}")
        assert done.status_code == 303, done.text
        _on_hub(done.headers["location"])
        # Sign-in goes to the admin page, never where a parameter says; a bad link redirects nowhere.
        signed = browser.get(f"{stack.login_link()}&{urlencode(_REDIRECT_PARAMS)}")
        assert signed.status_code == 303 and signed.headers["location"] == "/admin/", signed.headers
        bad = browser.get("/admin/login", params={"token": "sbl_" + "x" * 43, **_REDIRECT_PARAMS})
        assert bad.status_code == 401 and "location" not in bad.headers
        for name in ("//evil.example", "https:", "%2F%2Fevil.example"):
            assert browser.get(f"/admin/sections/{name}").status_code == 404
    # A connection name that would make the callback's redirect leave the hub is refused up front.
    with hub.admin() as admin:
        for name in ("//evil.example", "https://evil.example", "a/../../x", "a\r\nLocation: //evil"):
            start = admin.get("/connect/hubspot", params={"name": name, "scopes": "crm.contacts.read"})
            assert start.status_code == 422, (name, start.text)
