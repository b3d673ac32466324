"""Bearer secrets the hub issues (agent keys, admin tokens, sign-in links): minted random, stored hashed."""

import hashlib
import hmac
import secrets

__all__ = ["ADMIN_TOKEN_PREFIX", "AGENT_KEY_PREFIX", "hash_secret", "mint", "same_secret"]

AGENT_KEY_PREFIX = "sbk_"
ADMIN_TOKEN_PREFIX = "sba_"


def mint(prefix: str) -> str:
    """`prefix` + 32 random bytes, url-safe."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 hex: these secrets carry 256 bits of entropy, so a fast unsalted hash is safe to store."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
