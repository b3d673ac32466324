"""Configuration from the environment (prefix `SWITCHBOARD_`), grouped per provider.

`SWITCHBOARD_HUBSPOT_CLIENT_ID` lands in `settings.hubspot.client_id`: each provider is a small sub-model,
so adding one adds one field here and nothing else.
"""

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ProviderSettings", "Settings"]


class ProviderSettings(BaseModel):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    secret_key: SecretStr | None = None
    api_base: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_nested_delimiter="_", env_nested_max_split=1, extra="ignore"
    )

    database_url: str = "sqlite:///./var/switchboard.db"
    data_dir: Path = Path("./var")
    master_keys: SecretStr | None = None
    base_url: str = "http://127.0.0.1:8000"
    sandbox: bool = False
    admin_token: SecretStr | None = None
    redis_url: SecretStr | None = Field(
        default=None, description="Keep rate-limit counters in this Redis (its URL may hold a password)."
    )
    log_level: str = "INFO"
    access_log: bool = Field(default=False, description="Log every HTTP request (the audit log records every call).")
    provider_threads: int = Field(default=64, ge=4, le=1024, description="Threads for synchronous provider SDKs.")

    provider_timeout: float = Field(default=20.0, gt=0, description="Seconds a provider call may take.")
    refresh_margin: float = Field(default=300.0, ge=0, description="Refresh tokens this long before expiry.")
    refresh_interval: float = Field(default=60.0, gt=0, description="How often idle connections are checked.")
    cache_poll_interval: float = Field(
        default=0.25, gt=0, description="How often a replica checks for policy changes made elsewhere."
    )
    flow_retention: int = Field(
        default=30 * 86_400, ge=60, description="Seconds a fingerprint of data an agent read blocks its flow."
    )
    untrusted_window: int = Field(
        default=3600, ge=1, description="Seconds a call with no session stays untrusted after reading outsiders' text."
    )
    session_ttl: int = Field(default=86_400, ge=60, description="Seconds a named session's untrusted mark lasts.")
    approval_ttl: int = Field(default=86_400, ge=1, description="Seconds a call may wait for a human's approval.")
    approval_poll: float = Field(
        default=1.0, gt=0, description="How often a replica looks for calls approved elsewhere, to run them."
    )
    oauth_state_ttl: int = 600
    admin_session_ttl: int = 12 * 3600
    login_link_ttl: int = 3600

    hubspot: ProviderSettings = ProviderSettings()
    google: ProviderSettings = ProviderSettings()
    slack: ProviderSettings = ProviderSettings()
    stripe: ProviderSettings = ProviderSettings()

    @cached_property
    def redirect_uri(self) -> str:
        return f"{self.base_url.rstrip('/')}/oauth/callback"

    def provider(self, key: str) -> ProviderSettings:
        value = getattr(self, key, None)
        if not isinstance(value, ProviderSettings):
            raise KeyError(key)
        return value
