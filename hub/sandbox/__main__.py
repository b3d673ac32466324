"""Serve one sandbox provider alone: `python -m hub.sandbox hubspot --host 127.0.0.1 --port 8765`.

The app's credentials come from `SANDBOX_CLIENT_ID` / `SANDBOX_CLIENT_SECRET`, never from the command line,
where `ps` and shell history would show them.
"""

import argparse
import os
import sys

import uvicorn

from hub.sandbox import SANDBOXES

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("provider", choices=sorted(SANDBOXES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--rotate-refresh-tokens",
        action="store_true",
        help="issue a new refresh token on each refresh and invalidate the old one",
    )
    parser.add_argument("--access-token-ttl", type=int, default=1800, metavar="SECONDS")
    args = parser.parse_args(argv)
    client_id, client_secret = os.environ.get("SANDBOX_CLIENT_ID"), os.environ.get("SANDBOX_CLIENT_SECRET")
    if not client_id or not client_secret:
        parser.error("set SANDBOX_CLIENT_ID and SANDBOX_CLIENT_SECRET in the environment")

    sandbox = SANDBOXES[args.provider](
        client_id=client_id,
        client_secret=client_secret,
        access_token_ttl=args.access_token_ttl,
        rotate_refresh_tokens=args.rotate_refresh_tokens,
    )
    uvicorn.run(sandbox.app, host=args.host, port=args.port, lifespan="off", ws="none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
