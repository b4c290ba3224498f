"""The one bound on what a JSON request body may hold, checked by the app factory for every
family before any route reads the body:
- nesting depth: deeper bodies made parsers and validators recurse until they failed;
- numbers: each must be one DynamoDB can store (0, or a magnitude from 1e-130 below 1e126, at
  most 38 significant digits); NaN and Infinity are refused.
A body that is not JSON passes through untouched: the route decides what to do with it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiplane.errors import ValidationError

MAX_DEPTH = 64
MAX_SIGNIFICANT_DIGITS = 38
SMALLEST_MAGNITUDE, LARGEST_MAGNITUDE = 1e-130, 1e126  # DynamoDB's range (the largest excluded)
LARGEST_INTEGER_DIGITS = 126  # an integer below 1e126


def check_json_body(raw: bytes) -> None:
    """ValidationError when the body is JSON that nests too deep or holds a number out of range."""
    try:
        document = json.loads(raw, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        return
    if _deeper_than_allowed(document):
        raise _too_deep()


def _too_deep() -> ValidationError:
    return ValidationError(f"the body nests deeper than {MAX_DEPTH} levels")


def _out_of_range(text: str) -> ValidationError:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return ValidationError(
        f"the number {shown} is out of range: numbers must be 0 or have a magnitude from 1e-130 "
        f"below 1e126, with at most {MAX_SIGNIFICANT_DIGITS} significant digits"
    )


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or (value != 0 and not SMALLEST_MAGNITUDE <= abs(value) < LARGEST_MAGNITUDE):
        raise _out_of_range(text)
    return value


def _int(text: str) -> int:
    digits = text.lstrip("-")  # JSON integers have no leading zeros
    if len(digits) > LARGEST_INTEGER_DIGITS or len(digits.strip("0")) > MAX_SIGNIFICANT_DIGITS:
        raise _out_of_range(text)
    return int(text)


def _constant(name: str) -> Any:
    raise ValidationError(f"{name} is not a number the API accepts")


def _deeper_than_allowed(document: Any) -> bool:
    stack = [(document, 1)]
    while stack:  # no recursion: the walk itself must not be the next RecursionError
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
