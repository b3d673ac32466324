import base64
import stat
from pathlib import Path

import pytest

from hub.vault import KEY_FILE, Vault, VaultError, add_key_file_key, load_master_keys, new_master_key


def test_round_trip_and_no_plaintext_in_ciphertext() -> None:
    vault = Vault([new_master_key()])
    sealed = vault.encrypt("refresh-token-value", context="connection:1:refresh_token")
    assert "refresh-token-value" not in sealed
    assert sealed.startswith(f"v1.{vault.newest_key_id}.")
    assert vault.decrypt(sealed, context="connection:1:refresh_token") == "refresh-token-value"


def test_a_ciphertext_moved_to_another_row_does_not_open() -> None:
    vault = Vault([new_master_key()])
    sealed = vault.encrypt("secret", context="connection:1:access_token")
    with pytest.raises(VaultError):
        vault.decrypt(sealed, context="connection:2:access_token")


def test_tampering_is_detected() -> None:
    vault = Vault([new_master_key()])
    version, kid, payload = vault.encrypt("secret", context="c").split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 1
    with pytest.raises(VaultError):
        vault.decrypt(f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}", context="c")


def test_key_file_is_created_private_and_rotation_keeps_old_keys(tmp_path: Path) -> None:
    keys = load_master_keys(None, tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = Vault(keys)
    sealed = old.encrypt("secret", context="c")
    add_key_file_key(tmp_path)
    rotated = Vault(load_master_keys(None, tmp_path))
    assert rotated.newest_key_id != old.newest_key_id
    assert rotated.decrypt(sealed, context="c") == "secret"
    assert rotated.sealed_with_newest(rotated.reseal(sealed, context="c"))


def test_a_running_vault_learns_a_key_added_by_another_process(tmp_path: Path) -> None:
    vault = Vault(load_master_keys(None, tmp_path), reload=lambda: load_master_keys(None, tmp_path))
    add_key_file_key(tmp_path)
    newer = Vault(load_master_keys(None, tmp_path))
    assert vault.decrypt(newer.encrypt("secret", context="c"), context="c") == "secret"


def test_environment_keys_must_be_32_bytes() -> None:
    with pytest.raises(VaultError):
        load_master_keys(base64.b64encode(b"short").decode(), Path("/nonexistent"))
