"""Pure policy: the scope vocabulary, grants and the call decision. No I/O, no framework imports."""

from scopes.policy import Decision, GrantView, decide, tools_allowed
from scopes.vocabulary import SCOPES, is_known_scope

__all__ = ["SCOPES", "Decision", "GrantView", "decide", "is_known_scope", "tools_allowed"]
