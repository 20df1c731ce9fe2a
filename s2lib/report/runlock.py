"""One runner per run: an OS-level lock in the run's output folder, and the clean-up of a killed run's leftovers.

The lock file is ``<output_base>/<run_id>/.s2book.lock``. It is locked with ``flock(LOCK_EX)`` on an open file
description (the kernel drops the lock when its holder exits, however it exits, so there is no stale *lock*, only
stale *content*), and it holds one JSON line ``{"pid", "host", "started", "command"}`` of the holder. The file is
never removed (removing a locked file lets a third runner lock a new file of the same name), only emptied on
release; an acquirer that finds the old holder's line left behind knows that runner died without releasing
(SIGKILL, power loss) and says so (:attr:`RunLock.took_over`).

A second runner either fails at once with :class:`RunBusyError` (exit status :data:`EXIT_BUSY`, 75 =
``EX_TEMPFAIL``) naming the run and the holder, or, with ``wait``, blocks until the lock is free.
:func:`lock_holder` tells ``s2book status`` whether a run is in progress without taking the lock.
:func:`remove_leftovers` deletes the temporary files a killed run left (atomic writers' ``.*.tmp``, partially
executed notebooks ``.*.running.ipynb``); it must only run while the lock is held.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from s2lib.errors import S2BookError

__all__ = ["LOCK_NAME", "EXIT_BUSY", "RunBusyError", "RunLock", "lock_holder", "lock_runs", "describe_holder",
           "remove_leftovers"]

LOCK_NAME = ".s2book.lock"
"""Name of the lock file inside a run's output folder."""
EXIT_BUSY = 75
"""Exit status of ``s2book run`` when another runner holds a run's lock (``EX_TEMPFAIL`` of sysexits.h)."""
_POLL_S = 0.5


class RunBusyError(S2BookError):
    """Another runner holds the lock of this run (``holder``: its pid, host, start time, when known)."""

    def __init__(self, run_id: str, lock_path: Path, holder: dict[str, Any] | None) -> None:
        self.run_id = run_id
        self.lock_path = Path(lock_path)
        self.holder = holder or {}
        super().__init__(f"run {run_id} is busy: {describe_holder(self.holder)} holds {self.lock_path} "
                         "(use --wait to wait for it)")


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``"pid 123 on host h since 2026-...Z (s2book run x.yaml)"`` from a lock line (``"another process"``)."""
    if not holder:
        return "another process"
    text = f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')}"
    return text + (f" ({holder['command']})" if holder.get("command") else "")


def _read_line(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        doc = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunLock:
    """The lock of one run's output folder (use as a context manager, or :meth:`acquire` / :meth:`release`).

    Attributes:
        run_id: the run (for messages).
        folder: the run's output folder (created when missing).
        wait: block until the lock is free instead of raising :class:`RunBusyError`.
        took_over: after acquiring, the line of a previous holder that died without releasing (None if none).
    """

    run_id: str
    folder: Path
    wait: bool = False
    on_wait: Callable[[dict[str, Any] | None], Any] | None = None
    took_over: dict[str, Any] | None = None
    _fd: int | None = field(default=None, repr=False)

    @property
    def path(self) -> Path:
        """The lock file."""
        return Path(self.folder) / LOCK_NAME

    def acquire(self) -> RunLock:
        """Take the lock (waiting when :attr:`wait`); RunBusyError when it is held and not waiting."""
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise S2BookError(f"run {self.run_id}: cannot lock {self.path}: {err.strerror}") from err
                    holder = _read_line(fd)
                    if not self.wait:
                        raise RunBusyError(self.run_id, self.path, holder) from None
                    if not told and self.on_wait is not None:
                        self.on_wait(holder)
                        told = True
                    time.sleep(_POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.took_over = _read_line(fd)      # a line left behind: its runner died holding the lock
        line = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "command": " ".join(["s2book", *sys.argv[1:]])[:300]}
        data = (json.dumps(line) + "\n").encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        return self

    def release(self) -> None:
        """Empty the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(folder: Path) -> dict[str, Any] | None:
    """The holder's line when a runner holds the lock of ``folder`` now (``{}`` if it wrote none yet), else None.

    Probes with a non-blocking shared lock, released at once; never creates the lock file.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_line(fd) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


_LEFTOVER_SUFFIXES = (".tmp",)
_LEFTOVER_RUNNING = ".running.ipynb"


def remove_leftovers(folders: Iterable[Path]) -> list[Path]:
    """Delete the temporary files a killed run left below ``folders`` (hidden ``.*.tmp`` of the atomic writers
    and figures, hidden ``.*.running.ipynb`` of a stage killed mid-execution); return what was removed.

    Call only while holding the run's :class:`RunLock`: a live runner's temporary files look the same.
    """
    removed: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(".") and (name.endswith(_LEFTOVER_SUFFIXES) or name.endswith(_LEFTOVER_RUNNING)):
                    path = Path(dirpath) / name
                    try:
                        path.unlink()
                        removed.append(path)
                    except FileNotFoundError:
                        pass
    return removed


def lock_runs(targets: Iterable[tuple[str, Path, Iterable[Path]]], *, wait: bool = False,
              say: Callable[[str, str], Any] | None = None) -> list[RunLock]:
    """Lock every ``(run_id, output folder, folders to clean)`` (in folder order, so two runners waiting for
    overlapping sets of runs cannot deadlock), then remove each run's leftovers; return the held locks.

    Raises:
        RunBusyError: a run is locked by another runner and ``wait`` is False (the locks taken are released).
    """
    note = say or (lambda who, text: print(f"[{who}] {text}", file=sys.stderr, flush=True))
    held: list[RunLock] = []
    try:
        for run_id, folder, cleanup in sorted(targets, key=lambda t: str(Path(t[1]).resolve())):
            lock = RunLock(run_id, Path(folder), wait=wait,
                           on_wait=lambda h, r=run_id: note(r, f"waiting: {describe_holder(h)} is running it"))
            held.append(lock.acquire())
            if lock.took_over:
                note(run_id, f"note: took over the lock of {describe_holder(lock.took_over)}, which ended without "
                             "releasing it (killed?)")
            gone = remove_leftovers([Path(folder), *cleanup])
            if gone:
                note(run_id, f"note: removed {len(gone)} temporary file(s) left by an interrupted run")
    except BaseException:
        for lock in held:
            lock.release()
        raise
    return held
