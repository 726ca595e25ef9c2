"""The record of every launch, behind one store interface (`interface.HistoryStore`).

A library stays quiet: nothing is recorded until its user asks (`use`). The CLI records to the
JSON-lines file of `--record` and to the SQLite history of `--history` (or their defaults), and
so does the pytest plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.history.interface import HistoryStore, LaunchRecord

_stores: list[HistoryStore] = []


def use(store: HistoryStore) -> None:
    """Record every launch of this process in `store` too (idempotent)."""
    if store not in _stores:
        _stores.append(store)


def reset() -> None:
    """Record nowhere (as a fresh process, or a library user who asked for nothing)."""
    _stores.clear()


def active() -> bool:
    """Whether launches are recorded anywhere (else a launch need not gather its record)."""
    return bool(_stores)


def record(entry: LaunchRecord) -> None:
    """Keep `entry` in every store in use. A store that cannot be written is reported, never
    fatal: the launch already happened, and its result matters more than its record."""
    from engine.history.interface import HistoryError

    for store in _stores:
        try:
            store.append(entry)
        except (OSError, HistoryError) as exc:
            from engine.logs import logger

            logger.error(f"could not write the launch record to {store.name}: {exc}")
