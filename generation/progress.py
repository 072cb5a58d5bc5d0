"""Progress bars on standard error, one style for every long step (tqdm).

`bar(enabled, ...)` is a tqdm bar when `enabled`, else a silent stand-in with the same `update`,
`set_description`, `close` and context-manager methods, so that library code reads the same
either way and prints nothing when progress is off (tests, `-q`).
"""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    """A bar that shows nothing."""

    n = 0
    total = None

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(enabled: bool, *, total: float | None, unit: str, desc: str, **options: Any) -> Any:
    """A progress bar counting `unit`s up to `total` (None: a counter without a percentage).

    Byte counts: pass unit="B" and `unit_scale=True, unit_divisor=1024` (shows kB, MB ...).
    """
    if not enabled:
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True, **options)
