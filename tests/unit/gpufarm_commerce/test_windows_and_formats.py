"""Calendar windows, money in cents and format detection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiplane.commerce.formats import resolve_format
from aiplane.commerce.windows import cost_cents, current_window, from_cents, to_cents
from aiplane.errors import ValidationError


def test_windows_are_utc_calendar_periods():
    moment = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert current_window("hourly", moment).start == datetime(2026, 12, 31, 23, tzinfo=UTC)
    assert current_window("daily", moment).end == datetime(2027, 1, 1, tzinfo=UTC)
    monthly = current_window("monthly", moment)
    assert (monthly.start, monthly.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert monthly.sort_key == "monthly#2026-12-01T00"
    with pytest.raises(ValidationError):
        current_window("weekly", moment)


@pytest.mark.parametrize(("amount", "cents"), [(25.5, 2550), (100, 10000), ("0.01", 1), (0.1 + 0.2, 30)])
def test_amounts_become_exact_cents(amount, cents):
    assert to_cents(amount, param="amount") == cents
    assert from_cents(cents) == round(float(amount), 2)


@pytest.mark.parametrize("amount", [None, True, -1, 0, 1.234, "nan", "inf", "x", 10**12])
def test_bad_amounts_are_validation_errors(amount):
    with pytest.raises(ValidationError):
        to_cents(amount, param="amount")


def test_formats_are_detected_from_the_extension_or_checked_against_it():
    assert resolve_format("model.PTH", None).format == "pytorch"
    assert resolve_format("m.h5", "keras").format == "keras"
    with pytest.raises(ValidationError):
        resolve_format("m.h5", "onnx")
    with pytest.raises(ValidationError):
        resolve_format("m.zip", None)


def test_cost_rounds_up_to_the_cent_so_a_hold_never_falls_short():
    assert cost_cents(1.006, 2) == 202  # 201.2 cents
    assert cost_cents(0.526, 1) == 53
    assert cost_cents(1.006, 0.5) == 51
    assert cost_cents(2.5, 4) == 1000  # exact stays exact
    assert cost_cents(0.0, 10) == 0
