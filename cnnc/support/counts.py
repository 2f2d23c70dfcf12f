"""Counts too large for a float (a hostile model's 10**300 parameters) written exactly,
in scientific form, wherever a count or a size is shown."""

from __future__ import annotations

HUGE = 10 ** 18     # beyond this a count is shown in scientific form: no float can hold some


def sci(n: int) -> str:
    """A huge integer as 6.54e+323 (exact digits, no float overflow)."""
    digits = str(abs(int(n)))
    return f"{'-' if n < 0 else ''}{digits[0]}.{digits[1:3] or '0'}e+{len(digits) - 1}"
