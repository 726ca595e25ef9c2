"""The policy the plugin judges by: loaded and validated at start, reloaded when its files change.

A reload that fails (the policy no longer loads or validates) keeps the last good policy and
says so; the plugin never judges by a policy that does not validate, and never by none. Changes
are seen by polling a fingerprint of every file under the policy paths (path, size, mtime,
inode) once a second: cheap, and it needs no inotify.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.admission.decision import Judge
from policy.errors import Error
from policy.vetted import load_vetted

Fingerprint = tuple[tuple[str, int, int, int], ...]
POLL_SECONDS = 1.0


def fingerprint(paths: Sequence[Path]) -> Fingerprint:
    """What changes when any file under `paths` is written, added, removed or replaced."""
    seen: list[tuple[str, int, int, int]] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            seen.append((str(path), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(seen)


class PolicyHolder:
    """The current `Judge`; `check()` reloads it if the files changed (`watch` polls it)."""

    def __init__(
        self,
        paths: Sequence[Path],
        project: Path | None,
        default_profile: str | None,
        report: Callable[[str, str], None],
    ) -> None:
        self.paths = list(paths)
        self.project = project
        self.default_profile = default_profile
        self.report = report  # (event, message): reloads and failed reloads are logged
        self._seen = fingerprint(self.paths)
        # At start an invalid policy is an error (`UnusablePolicy`, exit 2): no plugin at all.
        self.judge = self._load()
        self._stop = threading.Event()

    def _load(self) -> Judge:
        return Judge(load_vetted(self.paths, self.project), self.default_profile)

    def check(self) -> bool:
        """Reload if any file changed; True if the policy now in use is a new one."""
        now = fingerprint(self.paths)
        if now == self._seen:
            return False
        self._seen = now
        try:
            judge = self._load()
        except Error as exc:
            details = "; ".join(str(d) for d in exc.diagnostics[:5])
            self.report(
                "reload-failed",
                f"policy changed but {exc.message}; keeping the last good policy"
                + (f" ({details})" if details else ""),
            )
            return False
        self.judge = judge  # one reference swap: a request in flight keeps the judge it has
        self.report("reloaded", f"policy reloaded: {len(judge.policy.profiles)} profile(s)")
        return True

    def watch(self) -> threading.Thread:
        """Poll for changes in a daemon thread until `stop()`."""

        def loop() -> None:
            while not self._stop.wait(POLL_SECONDS):
                try:
                    self.check()
                except Exception as exc:  # the watcher must outlive one odd file system error
                    self.report("reload-failed", f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=loop, name="policy-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
