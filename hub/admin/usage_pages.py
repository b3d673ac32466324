"""The Usage page at /admin/usage: calls, denials, errors and latency by hour or day, per agent and per tool,
drawn as inline SVG bar charts with their numbers in tables; model tokens and cost per agent; and the price
table that cost comes from.

The view form is a plain GET form (htmx swaps only the results); the price forms are plain POSTs with the
CSRF token, answered with the results again for htmx and with a redirect otherwise. Included in
hub.admin.pages' router, under /admin.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from hub import usage as usage_service
from hub.admin.answers import SessionToken
from hub.admin.charts import Chart, Column, bar_chart, sparkline
from hub.admin.frame import frame, wants_fragment
from hub.admin.rendering import FormError, PageRoute, html
from hub.admin.views import EXPLAIN_TOOLS
from hub.admin_auth import csrf_token
from hub.api.deps import HubDep
from hub.errors import InvalidArguments, SwitchboardError
from hub.models import Agent, AuditRecord
from hub.runtime import Hub
from hub.usage import PERIODS, PriceWrite, Usage

__all__ = ["router"]

# No prefix: hub.admin.pages includes this router in its own, under /admin.
router = APIRouter(route_class=PageRoute, include_in_schema=False)

PeriodName = Literal["hour", "day"]
# After a plain POST the browser is redirected with one of these; a fixed set, as hub.admin.answers.DONE.
_DONE = {
    "price-saved": "Price saved: costs below use it now, for all reported usage.",
    "price-removed": "Price removed: that model's tokens are no longer counted in costs.",
}
# The calls chart's stack, bottom up: (CSS class suffix, CallStats attribute, tooltip word).
_CALL_KINDS = (
    ("ok", "succeeded", "succeeded"),
    ("error", "errors", "errors"),
    ("deny", "denials", "denied"),
    ("pending", "pending", "awaiting approval"),
)


def _bucket_text(start: datetime, period: str) -> str:
    return start.strftime("%Y-%m-%d %H:00") if period == "hour" else start.strftime("%Y-%m-%d")


def _tick(start: datetime, index: int, period: str) -> str | None:
    if period == "hour":
        return start.strftime("%H:00") if index % 3 == 0 else None
    return start.strftime("%b %d") if index % 2 == 0 else None


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def _calls_chart(found: Usage) -> Chart:
    columns = []
    for index, (start, stats) in enumerate(found.buckets):
        counts = [(kind, int(getattr(stats, attr)), word) for kind, attr, word in _CALL_KINDS]
        parts = [(kind, float(count)) for kind, count, _ in counts]
        said = ", ".join(f"{count} {word}" for _, count, word in counts if count)
        label = f"{_bucket_text(start, found.period.name)} UTC: {stats.calls} calls" + (f" ({said})" if said else "")
        columns.append(Column(parts, label, _tick(start, index, found.period.name)))
    return bar_chart(columns)


def _latency_chart(found: Usage) -> Chart:
    columns = []
    for index, (start, stats) in enumerate(zip(found.starts, found.series, strict=True)):
        label = f"{_bucket_text(start, found.period.name)} UTC: median {_ms(stats.p50_ms)}, average {_ms(stats.avg_ms)}"
        columns.append(
            Column([("p50", stats.p50_ms or 0)], label, _tick(start, index, found.period.name), stats.avg_ms)
        )
    return bar_chart(columns, unit=" ms")


def _load(session: Session, *, period: PeriodName, agent: str, tool: str) -> dict[str, Any]:
    found = usage_service.load_usage(session, period=PERIODS[period], agent=agent or None, tool=tool or None)
    costs = {c.agent: c for c in found.costs}
    names = sorted(set(found.agents) | set(costs))
    return {
        "usage": found,
        "costs": costs,
        "agent_names": names,
        "agents": list(session.scalars(select(Agent.name).order_by(Agent.name))),
        "prices": usage_service.list_prices(session),
        "models": usage_service.models_reported(session),
        "any_calls": session.scalar(select(AuditRecord.seq).limit(1)) is not None,
    }


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


async def _context(
    hub: Hub, session_token: str, *, period: PeriodName, agent: str, tool: str, **extra: Any
) -> dict[str, Any]:
    """The results' context; with `frame()`'s for the whole page. The price forms need the CSRF token
    in either case (a fragment's forms must also work once htmx has swapped them in)."""
    loaded = await hub.db.run(lambda s: _load(s, period=period, agent=agent, tool=tool))
    found: Usage = loaded["usage"]
    return {
        **loaded,
        "csrf": csrf_token(hub.secret_key, session_token),
        "view": {"period": period, "agent": agent, "tool": tool},
        "periods": PERIODS,
        "tools": EXPLAIN_TOOLS,
        "calls_chart": _calls_chart(found),
        "latency_chart": _latency_chart(found),
        "sparkline": sparkline,
        "ms": _ms,
        "money": _money,
        "bucket_text": _bucket_text,
        "total": found.total,
        "notice": None,
        "error": None,
        "form": {},
        **extra,
    }


View = tuple[PeriodName, str, str]  # period, agent, tool: what the page shows, kept across a price change


def _view_query(view: View, **extra: str) -> str:
    period, agent, tool = view
    return urlencode({k: v for k, v in {"period": period, "agent": agent, "tool": tool, **extra}.items() if v})


@router.get("/usage")
async def usage_page(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    period: PeriodName = "hour",
    agent: Annotated[str, Query(max_length=64)] = "",
    tool: Annotated[str, Query(max_length=64)] = "",
    done: str = "",
    price_model: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The page, or for htmx just its results; `price_model` fills in the price form (from "Set a price")."""
    context = await _context(
        hub, session_token, period=period, agent=agent, tool=tool, notice=_DONE.get(done), form={"model": price_model}
    )
    if wants_fragment(request):
        return html("_usage.html", **context)
    return html("usage.html", **{**await frame(hub, session_token, here="usage"), **context})


async def _price_answer(
    request: Request,
    hub: Hub,
    session_token: str,
    *,
    view: View,
    done: str | None = None,
    error: SwitchboardError | None = None,
    form_id: str = "price-form",
    form: dict[str, str] | None = None,
) -> Response:
    """htmx: the results again, with the notice or the error beside its form. Otherwise a redirect after a
    change (Post/Redirect/Get), or the whole page with the error."""
    if error is None and not wants_fragment(request):
        return RedirectResponse(f"/admin/usage?{_view_query(view, done=done or '')}#prices", status_code=303)
    period, agent, tool = view
    context = await _context(
        hub,
        session_token,
        period=period,
        agent=agent,
        tool=tool,
        notice=_DONE.get(done or ""),
        error=FormError(form_id, error.detail) if error else None,
        form=form or {},
    )
    status = error.status if error else 200
    if wants_fragment(request):
        return html("_usage.html", status, **context)
    return html("usage.html", status, **{**await frame(hub, session_token, here="usage"), **context})


@router.post("/usage/prices")
async def save_price(
    request: Request,
    hub: HubDep,
    session_token: SessionToken,
    model: Annotated[str, Form(max_length=200)] = "",
    input_per_mtok: Annotated[str, Form(max_length=40)] = "",
    output_per_mtok: Annotated[str, Form(max_length=40)] = "",
    period: Annotated[PeriodName, Form()] = "hour",
    agent: Annotated[str, Form(max_length=64)] = "",
    tool: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    view: View = (period, agent, tool)
    form = {"model": model, "input_per_mtok": input_per_mtok, "output_per_mtok": output_per_mtok}
    try:
        price = PriceWrite(
            input_per_mtok=_dollars(input_per_mtok, "input"), output_per_mtok=_dollars(output_per_mtok, "output")
        )
        await hub.db.run(lambda s: usage_service.set_price(s, model=model.strip(), price=price))
    except SwitchboardError as exc:
        return await _price_answer(request, hub, session_token, view=view, error=exc, form=form)
    return await _price_answer(request, hub, session_token, view=view, done="price-saved")


def _dollars(text: str, what: str) -> float:
    try:
        value = float(text.strip().removeprefix("$").replace(",", ""))
    except ValueError:
        raise InvalidArguments(f"the {what} price must be a number of dollars, like 3 or 0.25") from None
    if not 0 <= value <= 1_000_000:
        raise InvalidArguments(f"the {what} price must be between 0 and 1,000,000 dollars per million tokens")
    return value


@router.post("/usage/prices/{model:path}/delete")
async def delete_price(
    request: Request,
    model: str,
    hub: HubDep,
    session_token: SessionToken,
    period: Annotated[PeriodName, Form()] = "hour",
    agent: Annotated[str, Form(max_length=64)] = "",
    tool: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    view: View = (period, agent, tool)
    try:
        await hub.db.run(lambda s: usage_service.delete_price(s, model=model))
    except SwitchboardError as exc:
        return await _price_answer(request, hub, session_token, view=view, error=exc, form_id="prices")
    return await _price_answer(request, hub, session_token, view=view, done="price-removed")
