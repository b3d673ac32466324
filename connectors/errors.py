"""What a provider call can fail with, independent of any provider's SDK.

    ConnectorError
     ├── ProviderAuthExpired     the provider refused the token (401): the hub refreshes once and retries
     ├── ProviderForbidden       the token lacks a provider scope (403)
     ├── ProviderNotFound        the object does not exist (404)
     ├── ProviderRejected        the provider refused the request's content (400/409/422)
     ├── ProviderRateLimited     429, with the provider's Retry-After
     ├── ProviderUnavailable     5xx, connection refused or reset, unreadable answer: a read is retried once
     └── ProviderTimeout         no answer within the call's time-out

Messages are safe to show an agent: they never carry tokens, URLs with credentials or raw bodies.
"""

__all__ = [
    "ConnectorError",
    "ProviderAuthExpired",
    "ProviderForbidden",
    "ProviderNotFound",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderTimeout",
    "ProviderUnavailable",
]


class ConnectorError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderAuthExpired(ConnectorError):
    pass


class ProviderForbidden(ConnectorError):
    def __init__(self, message: str, missing_scopes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing_scopes = missing_scopes


class ProviderNotFound(ConnectorError):
    pass


class ProviderRejected(ConnectorError):
    pass


class ProviderRateLimited(ConnectorError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(ConnectorError):
    """`retried`: the SDK has applied its own retry rules to this failure, so the hub does not retry it again."""

    def __init__(self, message: str, *, retried: bool = False) -> None:
        super().__init__(message)
        self.retried = retried


class ProviderTimeout(ConnectorError):
    pass
