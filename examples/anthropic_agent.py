"""An agent on the official Anthropic SDK that acts only through Switchboard's tools: a complete tool-use loop.

    pip install anthropic httpx          # plus Switchboard's hub/client.py (pip install switchboard)
    export ANTHROPIC_API_KEY=sk-ant-…  ANTHROPIC_MODEL=claude-sonnet-4-5   # ANTHROPIC_BASE_URL is optional
    export SWITCHBOARD_URL=https://hub.example.com  SWITCHBOARD_AGENT_KEY=sbk_…
    python examples/anthropic_agent.py "Find Ada Lovelace in the CRM and tell me her phone number"

The model sees exactly the tools the agent's grants allow, described with the limits those grants impose.
Each turn, every `tool_use` block is run through Switchboard and answered with a `tool_result`: refusals
(which scope or rule, and that an admin can grant it) and calls waiting for a human's approval come back as
`is_error` results the model can read and explain. The loop ends when the model stops asking for tools, or
after `SWITCHBOARD_MAX_TURNS` turns (10 by default). The final answer is printed.
"""

import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import anthropic

from hub.client import Switchboard

__all__ = ["main", "run"]

MAX_TURNS = 10
MAX_TOKENS = 4096
SYSTEM = (
    "You help the user by calling the tools you are given, which act on the company's accounts through "
    "Switchboard. Each tool's description ends with the limits your grant imposes: stay within them. When a "
    "tool result says a call was refused or waits for a human's approval, do not retry it: tell the user why "
    "and what an admin can do."
)


def _text(message: Any) -> str:
    return "\n".join(block.text for block in message.content if block.type == "text").strip()


def run(
    prompt: str,
    *,
    client: anthropic.Anthropic,
    switchboard: Switchboard,
    model: str,
    max_turns: int = MAX_TURNS,
) -> tuple[str, bool]:
    """Converse until the model stops asking for tools; (its final text, whether it finished in time)."""
    tools: Any = switchboard.anthropic_tools()
    messages: list[Any] = [{"role": "user", "content": prompt}]
    for _ in range(max(1, max_turns)):
        response = client.messages.create(
            model=model, max_tokens=MAX_TOKENS, system=SYSTEM, tools=tools, messages=messages
        )
        messages.append({"role": "assistant", "content": response.content})
        if response.stop_reason != "tool_use":
            return _text(response), True
        messages.append({"role": "user", "content": switchboard.run_tool_uses(response)})
    return _text(response), False


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(f"usage: {os.path.basename(sys.argv[0])} PROMPT", file=sys.stderr)
        return 2
    missing = [
        name
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "SWITCHBOARD_URL", "SWITCHBOARD_AGENT_KEY")
        if not os.environ.get(name)
    ]
    if missing:
        print(f"set {', '.join(missing)} in the environment", file=sys.stderr)
        return 2
    client = anthropic.Anthropic(
        api_key=os.environ["ANTHROPIC_API_KEY"], base_url=os.environ.get("ANTHROPIC_BASE_URL") or None
    )
    # One Switchboard session per conversation: what one conversation read cannot steer another's calls.
    session = f"anthropic-agent-{uuid.uuid4().hex[:16]}"
    max_turns = int(os.environ.get("SWITCHBOARD_MAX_TURNS", MAX_TURNS))
    with Switchboard(os.environ["SWITCHBOARD_URL"], os.environ["SWITCHBOARD_AGENT_KEY"], session=session) as sb:
        answer, finished = run(
            " ".join(args), client=client, switchboard=sb, model=os.environ["ANTHROPIC_MODEL"], max_turns=max_turns
        )
    print(answer)
    if not finished:
        print(f"(stopped after {max_turns} turns: the model still wanted tools)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
