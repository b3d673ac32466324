"""Pure policy: the scope and label vocabularies, grants and their constraints, the call decision, result
redaction and data-flow rules. No I/O, no framework imports; `scopes` imports neither hub nor connectors.

    vocabulary   scope names                  labels       data labels, their kinds and field conventions
    paths        the path syntax (a.b[].c)    condition    the approval condition language
    constraints  a grant's constraints JSON   tool_policy  a tool's policy metadata (ToolPolicy)
    checks       argument checks per grant    decision     Decision, FiredRule, ResultPolicy
    policy       decide() and rate checks     redaction    filtering and masking results
    flow         fingerprints, flows, untrusted sessions
"""

from scopes.checks import CallFacts, FactsNeeded
from scopes.condition import Condition, ConditionError, parse_condition
from scopes.constraints import ALLOW_LISTS, Constraints, ConstraintsError, parse_constraints
from scopes.decision import Decision, FiredRule, RateLimit, ResultPolicy
from scopes.flow import (
    Flow,
    FlowContext,
    FlowOrigin,
    SessionState,
    candidates,
    extract_sensitive,
    find_flows,
    fingerprint,
    fingerprint_result,
    flow_decision,
    normalise,
    session_decision,
)
from scopes.labels import LABELS, SENSITIVE_LABELS, is_known_label
from scopes.policy import (
    GrantView,
    RateUsage,
    arguments_digest,
    check_rates,
    decide,
    facts_needed,
    rate_limits_for,
    tools_allowed,
    unlisted_resources,
)
from scopes.redaction import Shaped, filter_result, redact, shape_result
from scopes.tool_policy import ToolPolicy, tool_policy
from scopes.vocabulary import SCOPES, is_known_scope

__all__ = [
    "ALLOW_LISTS",
    "LABELS",
    "SCOPES",
    "SENSITIVE_LABELS",
    "CallFacts",
    "Condition",
    "ConditionError",
    "Constraints",
    "ConstraintsError",
    "Decision",
    "FactsNeeded",
    "FiredRule",
    "Flow",
    "FlowContext",
    "FlowOrigin",
    "GrantView",
    "RateLimit",
    "RateUsage",
    "ResultPolicy",
    "SessionState",
    "Shaped",
    "ToolPolicy",
    "arguments_digest",
    "candidates",
    "check_rates",
    "decide",
    "extract_sensitive",
    "facts_needed",
    "filter_result",
    "find_flows",
    "fingerprint",
    "fingerprint_result",
    "flow_decision",
    "is_known_label",
    "is_known_scope",
    "normalise",
    "parse_condition",
    "parse_constraints",
    "rate_limits_for",
    "redact",
    "session_decision",
    "shape_result",
    "tool_policy",
    "tools_allowed",
    "unlisted_resources",
]
