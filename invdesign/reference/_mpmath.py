"""The one place where the reference modules import mpmath (a ``test``-extra dependency)."""

from __future__ import annotations

import contextlib


def require_mpmath(user: str):
    """Return the `mpmath` module, or raise `ImportError` naming `user` and the fix."""
    try:
        import mpmath
    except ImportError as err:  # pragma: no cover - exercised only without the test extra
        raise ImportError(
            f"{user} needs mpmath, which is declared only in the test extra of invdesign; "
            'install it with: pip install -e ".[test]"'
        ) from err
    return mpmath


@contextlib.contextmanager
def at_least_dps(mp, dps: int):
    """Work with at least `dps` decimal digits (more if the caller already uses more)."""
    with mp.workdps(max(int(mp.mp.dps), int(dps))):
        yield
