import pytest

from aiplane.data.pagination import decode_cursor, encode_cursor, parse_limit
from aiplane.errors import ValidationError


def test_cursor_round_trips():
    key = {"pk": {"S": "A#1"}, "sk": {"S": "2026-01-01T00:00:00Z"}}
    cursor = encode_cursor(key)
    assert cursor and "=" not in cursor
    assert decode_cursor(cursor) == key


def test_no_key_means_no_cursor():
    assert encode_cursor(None) is None
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize("bad", ["!!!", "bm90IGpzb24", "WzEsMl0"])  # garbage, "not json", "[1,2]"
def test_bad_cursor_is_a_validation_error(bad):
    with pytest.raises(ValidationError) as raised:
        decode_cursor(bad)
    assert raised.value.param == "cursor"


def test_limit_bounds():
    assert parse_limit(None) == 100
    assert parse_limit("5") == 5
    for bad in ("0", "-1", "abc", "1001"):
        with pytest.raises(ValidationError):
            parse_limit(bad)
