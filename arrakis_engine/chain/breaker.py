"""A circuit breaker that opens on an error *ratio*, built on pybreaker's state machine.

pybreaker counts consecutive failures and reads the wall clock itself. The Score Service rule is
different -- open at 50 % errors over at least 5 calls, half-open after 30 s -- and time must be
passed in so tests never sleep. So this class keeps the recent outcomes and the clock, and
drives pybreaker's transitions (open, half-open) explicitly; pybreaker still guards each call,
closes the breaker after a good half-open trial and re-opens it after a bad one, and tells
listeners about every change.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, TypeVar

import pybreaker

T = TypeVar("T")


class BreakerOpen(Exception):
    """The breaker is open: the call was not attempted."""


class RatioBreaker(pybreaker.CircuitBreakerListener):
    def __init__(self, name: str, *, min_calls: int = 5, error_ratio: float = 0.5, window: int = 20,
                 reset_after: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.min_calls = min_calls
        self.error_ratio = error_ratio
        self.reset_after = reset_after
        self.clock = clock
        self._outcomes: deque[bool] = deque(maxlen=window)  # True = failed
        self._opened_at: float | None = None
        self._lock = threading.Lock()
        self.transitions: list[tuple[str, str]] = []
        # Huge limits: pybreaker never trips or resets on its own; this class decides.
        self._cb = pybreaker.CircuitBreaker(fail_max=10**9, reset_timeout=10**9, name=name, listeners=[self],
                                            throw_new_error_on_trip=False)

    # pybreaker listener
    def state_change(self, cb, old_state, new_state) -> None:
        old = getattr(old_state, "name", str(old_state))
        new = getattr(new_state, "name", str(new_state))
        self.transitions.append((old, new))
        if new == pybreaker.STATE_OPEN:
            self._opened_at = self.clock()
        elif new == pybreaker.STATE_CLOSED:
            self._outcomes.clear()
            self._opened_at = None

    @property
    def state(self) -> str:
        """closed, open or half-open (moving open -> half-open once the reset time has passed)."""
        with self._lock:
            current = self._cb.current_state
            if current == pybreaker.STATE_OPEN and self._opened_at is not None \
                    and self.clock() - self._opened_at >= self.reset_after:
                self._cb.half_open()
                current = self._cb.current_state
            return current

    @property
    def opened_at(self) -> float | None:
        return self._opened_at

    def call(self, fn: Callable[[], T]) -> T:
        state = self.state
        if state == pybreaker.STATE_OPEN:
            raise BreakerOpen(f"{self.name} circuit is open")
        try:
            result = self._cb.call(fn)
        except pybreaker.CircuitBreakerError as exc:
            raise BreakerOpen(f"{self.name} circuit is open") from exc
        except Exception:
            self._record(failed=True, trial=state == pybreaker.STATE_HALF_OPEN)
            raise
        self._record(failed=False, trial=False)
        return result

    def _record(self, *, failed: bool, trial: bool) -> None:
        with self._lock:
            if trial:
                return  # pybreaker re-opened it already
            self._outcomes.append(failed)
            n = len(self._outcomes)
            if self._cb.current_state == pybreaker.STATE_CLOSED and n >= self.min_calls \
                    and sum(self._outcomes) / n >= self.error_ratio:
                self._cb.open()

    def error_rate(self) -> float:
        with self._lock:
            return sum(self._outcomes) / len(self._outcomes) if self._outcomes else 0.0
