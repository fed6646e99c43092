"""Numbers in request fields (headers, query parameters, XML text).

`str.isdigit()` is no check for `int()`: it is true for '²' and other digits `int()` refuses,
and `int()` takes what no S3 field allows ('١٢', '1_000', ' 12 ') and refuses more than 4,300
digits. Every field that must be a plain non-negative number goes through `digits`.
"""

from __future__ import annotations

MAX_DIGITS = 19  # a signed 64-bit integer's width; every field here is smaller


def digits(raw: str, max_digits: int = MAX_DIGITS) -> int | None:
    """The value of `raw` when it is 1 to `max_digits` ASCII digits, else None."""
    if not raw or len(raw) > max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
