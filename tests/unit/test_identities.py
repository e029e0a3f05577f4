"""Credentials: scrypt hashes at rest, the identities file, revocation and reloading."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bus.errors import ConfigurationError
from gateway.identities import (
    FORMAT,
    Identities,
    IdentityFile,
    Role,
    hash_secret,
    new_credential,
    revoke,
    split_credential,
    verify_secret,
)


def test_a_secret_verifies_against_its_hash_and_nothing_else_does() -> None:
    """The scrypt hash accepts its secret and refuses another, a truncated one and a broken hash."""
    stored = hash_secret("s3cret")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cres", stored)
    assert not verify_secret("s3cre", stored)
    assert not verify_secret("s3cret", stored.replace("scrypt", "bcrypt"))
    assert not verify_secret("s3cret", "scrypt$x$8$1$AA==$AA==")
    assert not verify_secret("\ud800", stored)


def test_credential_text_splits_only_when_shaped_like_one() -> None:
    """KEY:SECRET splits at the first colon; a key of another shape or an empty secret is refused."""
    assert split_credential("gbk_0123456789abcdef:a:b") == ("gbk_0123456789abcdef", "a:b")
    for text in ("", "gbk_0123456789abcdef", "gbk_0123456789abcdef:", "key:secret", "gbk_0123456789ABCDEF:x"):
        assert split_credential(text) is None


def test_the_file_keeps_hashes_never_secrets_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    """A written credential is stored as key and hash in a 0600 file; its secret appears nowhere."""
    file = IdentityFile(tmp_path / "identities.json")
    credential, text = new_credential("localgov", Role.AGENCY)
    with file.changing() as credentials:
        credentials.append(credential)
    raw = (tmp_path / "identities.json").read_text()
    assert text.split(":", 1)[1] not in raw
    assert json.loads(raw)["format"] == FORMAT
    assert stat.S_IMODE((tmp_path / "identities.json").stat().st_mode) == 0o600
    assert file.read() == [credential]


def test_a_broken_file_is_refused_with_its_path(tmp_path: Path) -> None:
    """An identities file that is not the documented format fails loading, naming the file."""
    path = tmp_path / "identities.json"
    for body in ("{", '{"format": "other"}', json.dumps({"format": FORMAT, "credentials": [{"key": 1}]})):
        path.write_text(body)
        with pytest.raises(ConfigurationError, match=r"identities\.json"):
            Identities(path)


def test_revoking_an_organisation_revokes_its_active_credentials_only(tmp_path: Path) -> None:
    """Revoke marks every active credential of the organisation (or one key) and leaves others alone."""
    first, _ = new_credential("welfare", Role.MINISTRY)
    second, _ = new_credential("welfare", Role.MINISTRY)
    other, _ = new_credential("finance", Role.AGENCY)
    credentials = [first, second, other]
    assert [c.key for c in revoke(credentials, "welfare", second.key)] == [second.key]
    assert [c.key for c in revoke(credentials, "welfare")] == [first.key]
    assert revoke(credentials, "welfare") == []
    assert [c.active for c in credentials] == [False, False, True]


def test_authentication_follows_the_file_and_remembers_verified_credentials(tmp_path: Path) -> None:
    """A valid credential authenticates (then from memory); a wrong secret or a revoked key does not."""
    path = tmp_path / "identities.json"
    credential, text = new_credential("welfare", Role.MINISTRY)
    with IdentityFile(path).changing() as credentials:
        credentials.append(credential)
    identities = Identities(path, reload_check_s=0.0)
    key, secret = text.split(":", 1)
    assert identities.cached(key, secret) is None
    identity = identities.authenticate(key, secret)
    assert identity is not None
    assert (identity.organisation, identity.role) == ("welfare", Role.MINISTRY)
    assert identities.cached(key, secret) == identity
    assert identities.cached(key, secret + "x") is None
    assert identities.authenticate(key, secret + "x") is None
    assert identities.authenticate("gbk_0000000000000000", secret) is None
    with IdentityFile(path).changing() as credentials:
        revoke(credentials, "welfare")
    assert identities.cached(key, secret) is None
    assert identities.authenticate(key, secret) is None


def test_the_sample_in_deploy_is_a_valid_identities_file() -> None:
    """deploy/identities.sample.json parses as the documented format, one credential revoked."""
    sample = Path(__file__).resolve().parents[2] / "deploy" / "identities.sample.json"
    credentials = IdentityFile(sample).read()
    assert {c.role for c in credentials} == set(Role)
    assert [c.organisation for c in credentials if not c.active] == ["finance"]
