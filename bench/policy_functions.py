"""The pure policy functions, timed in-process: what `scopes` itself costs per call, with no I/O around it.

Each function is called the way the hub calls it, on inputs built once beforehand (the hub caches its
GrantViews too), and checked once before it is timed: a function that refused or did nothing would time the
wrong path. The time per call is the best of several repeats (`timeit`, garbage collector off while timing):
the least this machine needed, the figure least disturbed by whatever else it was doing.
"""

import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.grants import SCOPE, constraints
from connectors import TOOLS
from scopes import GrantView, RateUsage, ResultPolicy, decide, flow, shape_result

__all__ = ["REPEATS", "Timing", "time_functions"]

REPEATS = 5
_CONNECTION = "bench-hubspot"
_KEY = b"bench-policy-key-" + bytes(range(15))
_CONTACTS = 50
_MESSAGE_CHARS = 2048
_MESSAGE = (
    "Hi team, following up on this morning's renewal call with Grace Hopper from Example Corp.",
    "She asked for the revised quote at grace.hopper@example.com, with ops@example.org in copy.",
    "Her direct line is +1 (555) 123-4567; the front desk is 555.987.6543 when she is travelling.",
    "Next steps: update the contact record, move the deal to contract sent, book the onboarding.",
    "Ada Lovelace owns the technical review; reach her at ada.lovelace@analytical.example by Friday.",
    "Budget is approved up to 40,000 USD for the first year, invoiced quarterly from the Berlin office.",
)


@dataclass(frozen=True)
class Timing:
    name: str
    us_per_call: float
    calls_per_repeat: int
    repeats: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _best_per_call(fn: Callable[[], object], seconds: float, repeats: int) -> tuple[float, int]:
    """Seconds per call, best of `repeats` runs of about `seconds` each, and the calls in each run."""
    timer = timeit.Timer(fn)
    number, elapsed = 1, timer.timeit(1)
    while elapsed < seconds / 10:
        number *= 10
        elapsed = timer.timeit(number)
    number = max(1, round(number * seconds / elapsed))
    return min(timer.repeat(repeats, number)) / number, number


def _contacts(count: int) -> dict[str, Any]:
    """A hubspot_contacts_search result of `count` contacts, as the hub shapes it (JSON, no nulls)."""
    return {
        "contacts": [
            {
                "id": str(1000 + i),
                "email": f"person{i}@customer{i % 7}.example.com",
                "firstname": f"First{i}",
                "lastname": f"Last{i}",
                "phone": f"+1 555 {100 + i:03d} {4000 + i:04d}",
                "company": f"Customer {i % 7} Ltd",
                "jobtitle": "Head of Operations",
                "lifecyclestage": "customer",
                "updated_at": "2025-01-15T10:00:00.000Z",
            }
            for i in range(count)
        ],
        "total": count,
    }


def _message(chars: int) -> str:
    """Realistic message text (names, emails, phone numbers, prose) of at most `chars` characters."""
    text, i = "", 0
    while True:
        longer = f"{text} {_MESSAGE[i % len(_MESSAGE)]}" if text else _MESSAGE[0]
        if len(longer) > chars:
            return text
        text, i = longer, i + 1


def _decider(tool_name: str, arguments: dict[str, Any], rules: dict[str, Any]) -> Callable[[], Any]:
    tool = TOOLS[tool_name]
    grants = (GrantView(_CONNECTION, tool.provider, SCOPE, rules),)
    # What the hub passes when it counted the call first: this call, well inside the limit.
    usage = {(_CONNECTION, SCOPE): RateUsage(minute=1, day=1)} if "rate" in rules else None

    def call() -> Any:
        return decide(
            tool=tool.name,
            provider=tool.provider,
            needed=tool.scopes,
            grants=grants,
            connection=_CONNECTION,
            policy=tool.policy,
            arguments=arguments,
            usage=usage,
        )

    decision = call()
    if not decision.allowed:
        raise RuntimeError(f"{tool_name} was refused with {rules}: {decision.detail}")
    return call


def _shaper(results: ResultPolicy) -> Callable[[], Any]:
    policy = TOOLS["hubspot_contacts_search"].policy
    page = _contacts(_CONTACTS)

    def call() -> Any:
        return shape_result(page, policy=policy, results=results, key=_KEY)

    shaped = call().result["contacts"]
    if len(shaped) != _CONTACTS or not all("***@" in c["email"] and c["phone"].startswith("***") for c in shaped):
        raise RuntimeError(f"shape_result did not keep and mask all {_CONTACTS} contacts: {shaped[:2]}")
    return call


def time_functions(seconds: float = 0.2, repeats: int = REPEATS) -> list[Timing]:
    """Time each policy function for about `seconds` per repeat; see the module docstring."""
    contact = {"contact_id": "1000"}
    ids = [str(1000 + i) for i in range(_CONTACTS)]
    search = {"query": "", "limit": 50, "after": None}
    results = _decider("hubspot_contacts_search", search, constraints(ids))().results
    message = {"text": _message(_MESSAGE_CHARS)}

    def candidates() -> Any:
        return flow.candidates(message, _KEY)

    if not candidates():
        raise RuntimeError("flow.candidates found nothing in the message")
    functions = {
        "decide, grant without constraints": _decider("hubspot_contacts_get", contact, {}),
        "decide, grant with constraints (incl. rate)": _decider("hubspot_contacts_get", contact, constraints(ids)),
        f"shape_result, {_CONTACTS} contacts, filter + redact": _shaper(results),
        f"flow.candidates, {len(message['text'])}-char message": candidates,
    }
    timings = []
    for name, fn in functions.items():
        best, number = _best_per_call(fn, seconds, repeats)
        timings.append(Timing(name, best * 1e6, number, repeats))
    return timings
