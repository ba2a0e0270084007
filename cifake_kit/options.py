"""The numbers a user gives the kit, each checked by a `Range` before any work: NaN, infinities, negative
counts and seeds out of numpy's range are one line naming the flag and what it takes, never a traceback."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import CifakeError


@dataclass(frozen=True)
class Range:
    """The numbers a setting takes: finite, within [low, high] (an `open` end excluded), whole if `whole`."""

    low: float | None = None
    high: float | None = None
    whole: bool = False
    open_low: bool = False
    open_high: bool = False

    def check(self, name: str, value):
        """`value` if it is in range, else CifakeError naming `name` (a flag or a setting) and the range."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if (not number or not math.isfinite(value) or (self.whole and not whole)
                or (self.low is not None and (value < self.low or (self.open_low and value == self.low)))
                or (self.high is not None and (value > self.high or (self.open_high and value == self.high)))):
            raise CifakeError(f"{name} must be {self.describe()}, got {value!r}.")
        return int(value) if self.whole else value

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        low, high = _plain(self.low), _plain(self.high)
        if self.low is not None and self.high is not None:
            if self.open_low and self.open_high:
                return f"{kind} between {low} and {high} (exclusive)"
            return (f"{kind} {f'above {low}' if self.open_low else f'from {low}'} "
                    f"{f'and below {high}' if self.open_high else ('and at most ' if self.open_low else 'to ') + high}")
        if self.low is not None:
            return f"{kind} {'above' if self.open_low else 'of at least'} {low}"
        return f"a finite {kind[2:]}" if self.high is None else f"{kind} of at most {high}"


def _plain(number) -> str:
    return "" if number is None else f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


SEEDS = Range(0, 2**32 - 1, whole=True)  # what numpy's and torch's generators take
COUNT = Range(1, whole=True)  # images, steps, layers: at least one
NONNEGATIVE_COUNT = Range(0, whole=True)
SHARE = Range(0, 1, open_low=True, open_high=True)  # a fraction of a split, both ends excluded
POSITIVE = Range(0, open_low=True)
LEARNING_RATES = Range(0, 1, open_low=True)  # above 1, Adam's steps throw the weights out of any useful range

