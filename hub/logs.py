"""Logging set-up, with the one redaction every log line passes: secrets in URLs never reach a log.

OAuth callbacks carry `code` and `state`, sign-in links a one-time `token`, approval links their signed
token in the path (`/approve/<token>`); uvicorn's access log would print them. The filter masks those values
(and any bearer-looking token) before formatting.
"""

import logging
import re
import sys

__all__ = ["RedactSecrets", "configure_logging", "redact"]

_QUERY_SECRET = re.compile(r"(?i)\b(code|state|token|csrf_token|access_token|refresh_token|client_secret)=[^&\s\"']+")
_TOKEN = re.compile(r"\b(sbk|sba|sbl|sbs)_[A-Za-z0-9_-]{16,}")
_APPROVAL_LINK = re.compile(r"(/approve/)[^/?#\s\"']+")


def redact(text: str) -> str:
    return _APPROVAL_LINK.sub(r"\1***", _TOKEN.sub(r"\1_***", _QUERY_SECRET.sub(r"\1=***", text)))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Library loggers that would print request bodies or headers at DEBUG stay at WARNING.
    quiet = ("hubspot", "urllib3", "httpx", "httpx2", "httpcore", "authlib", "stripe", "slack_sdk", "googleapiclient")
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
