"""Password rules and hashing, and the permission vocabulary."""

import pytest

from aiplane.errors import ValidationError
from aiplane.identity.access import EDIT, LEVEL, MANAGE, PERMISSIONS, VIEW, permission_for_method
from aiplane.identity.passwords import check_strength, hash_password, verify_password


@pytest.mark.parametrize("password", [None, "", "short1!", "onlyletters", "12345678901", "aaaa1111", "x" * 300])
def test_weak_passwords_are_refused(password):
    with pytest.raises(ValidationError) as refused:
        check_strength(password)
    assert refused.value.param == "password"


def test_argon2id_hashes_verify_only_the_right_password():
    stored = hash_password("correct-horse-42")
    assert stored.startswith("$argon2id$") and "correct-horse-42" not in stored
    assert verify_password(stored, "correct-horse-42")
    assert not verify_password(stored, "wrong-horse-42")
    assert not verify_password(None, "correct-horse-42")
    assert not verify_password("not a hash", "correct-horse-42")


def test_levels_are_ordered_and_methods_map_to_them():
    assert PERMISSIONS == ("none", "view", "edit", "manage")
    assert LEVEL["none"] < LEVEL[VIEW] < LEVEL[EDIT] < LEVEL[MANAGE]
    assert [permission_for_method(m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")] == [
        VIEW,
        EDIT,
        EDIT,
        EDIT,
        MANAGE,
    ]


def test_the_decoy_hash_costs_what_a_real_hash_costs():
    """The decoy is a literal (no hashing at import); its parameters must stay the hasher's."""
    from argon2 import extract_parameters

    from aiplane.identity import passwords

    assert extract_parameters(passwords._DECOY_HASH) == extract_parameters(passwords.hash_password("another-pass-1"))
    assert passwords.verify_password(None, "decoy password, never matches") is False
