"""Hypothesis for the pure policy tests: bounded, deterministic, and no example database in the repo."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "scopes",
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("scopes")
