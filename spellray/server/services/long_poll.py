"""A follower's request held open (long poll): `spell logs -f` and `spell stats -f` hear of
new data and of the run's end as soon as either is there, with one request at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def long_poll(read: Callable[[], T], ready: Callable[[T], bool], wait: float,
              interval: float) -> T:
    """``read()`` every ``interval`` seconds until ``ready`` says its answer is worth
    sending or ``wait`` seconds have passed; the last answer."""
    deadline = time.monotonic() + wait
    while True:
        answer = read()
        if ready(answer) or time.monotonic() >= deadline:
            return answer
        time.sleep(interval)
