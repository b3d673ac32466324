"""Prometheus metrics. Labels carry names (agent, tool, provider), never arguments or secrets."""

from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CALLS", "CALL_LATENCY", "PENDING_APPROVALS", "PROVIDER_ERRORS", "REFRESHES", "count_call"]

CALLS = Counter("switchboard_tool_calls_total", "Tool calls by outcome", ["agent", "tool", "outcome"])
CALL_LATENCY = Histogram(
    "switchboard_tool_call_seconds",
    "Tool call latency, end to end inside the hub",
    ["tool"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROVIDER_ERRORS = Counter("switchboard_provider_errors_total", "Provider call failures", ["provider", "kind"])
REFRESHES = Counter("switchboard_token_refreshes_total", "Token refreshes by result", ["provider", "result"])
PENDING_APPROVALS = Gauge("switchboard_pending_approvals", "Calls waiting for a human's approval")


@lru_cache(maxsize=4096)
def _call_series(agent: str, tool: str, outcome: str) -> tuple[Counter, Histogram]:
    # `labels()` validates and looks the series up under a lock: once per series, not on every call.
    return CALLS.labels(agent, tool, outcome), CALL_LATENCY.labels(tool)


def count_call(agent: str, tool: str, outcome: str, seconds: float) -> None:
    """One tool call in the metrics: its outcome, and its latency inside the hub."""
    calls, latency = _call_series(agent, tool, outcome)
    calls.inc()
    latency.observe(seconds)
