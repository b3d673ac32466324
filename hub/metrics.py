"""Prometheus metrics. Labels carry names (agent, tool, provider), never arguments or secrets."""

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["CALLS", "CALL_LATENCY", "PENDING_APPROVALS", "PROVIDER_ERRORS", "REFRESHES"]

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
