"""Start a child that leads a new session with a pseudo-terminal as its controlling tty.

``subprocess.Popen(preexec_fn=...)`` would do it with ``ioctl(TIOCSCTTY)`` in the child, but
that runs Python code between fork and exec, which is not safe while other threads run (a
lock one of them held at fork time -- allocator, import, I/O -- stays held in the child for
ever; the executor always has worker threads).  Instead glibc's ``posix_spawn`` does every
step in the child without Python: ``setsid``, then *opening* the terminal by name, which makes
it the controlling terminal of a session leader that has none (Linux ``tty_open``), then the
``dup2``s, ``chdir`` and ``closefrom``.  Python's ``os.posix_spawn`` has no ``chdir`` action,
so the libc calls go through :mod:`ctypes`.
"""
from __future__ import annotations

import ctypes
import os
import time
from typing import Any

_libc: Any = ctypes.CDLL(None, use_errno=True)
#: glibc's <spawn.h> flag values (Linux)
_SETSIGDEF = 0x04
_SETSIGMASK = 0x08
_SETSID = 0x80
#: opaque glibc structures, allocated generously (x86-64: 80, 336 and 128 bytes)
_ACTIONS_SIZE = 256
_ATTR_SIZE = 512
_SIGSET_SIZE = 256


def _check(rc: int) -> None:
    if rc != 0:
        raise OSError(rc, os.strerror(rc))


def available() -> bool:
    """True when libc offers every call :func:`spawn_with_tty` needs (glibc >= 2.29)."""
    return all(hasattr(_libc, name) for name in (
        "posix_spawn", "posix_spawn_file_actions_addchdir_np", "posix_spawnattr_setflags"))


def _cstrings(items: list[str]) -> Any:
    arr = (ctypes.c_char_p * (len(items) + 1))()
    arr[:-1] = [os.fsencode(s) for s in items]
    arr[-1] = None
    return arr


class SpawnedChild:
    """The part of ``subprocess.Popen`` the executor uses: ``pid``, ``returncode`` (negative:
    killed by that signal), ``poll()`` and ``wait()``."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
        return self.returncode


def spawn_with_tty(program: str, args: list[str], cwd: str, env: dict[str, str], tty_path: str) -> SpawnedChild:
    """Start ``program`` in a new session whose stdio and controlling terminal is ``tty_path``.

    Raises OSError with the errno of the failing step (exec, chdir, open), as
    ``subprocess.Popen`` does."""
    actions = ctypes.create_string_buffer(_ACTIONS_SIZE)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    _check(_libc.posix_spawn_file_actions_init(actions))
    try:
        _check(_libc.posix_spawnattr_init(attr))
        try:
            _check(_libc.posix_spawn_file_actions_addopen(actions, 0, os.fsencode(tty_path), os.O_RDWR, 0))
            _check(_libc.posix_spawn_file_actions_adddup2(actions, 0, 1))
            _check(_libc.posix_spawn_file_actions_adddup2(actions, 0, 2))
            _check(_libc.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd)))
            if hasattr(_libc, "posix_spawn_file_actions_addclosefrom_np"):  # glibc >= 2.34
                _check(_libc.posix_spawn_file_actions_addclosefrom_np(actions, 3))
            empty = ctypes.create_string_buffer(_SIGSET_SIZE)
            every = ctypes.create_string_buffer(_SIGSET_SIZE)
            _libc.sigemptyset(empty)
            _libc.sigfillset(every)
            _check(_libc.posix_spawnattr_setsigmask(attr, empty))
            # the executor ignores SIGPIPE (Python does): a child starts with every default
            _check(_libc.posix_spawnattr_setsigdefault(attr, every))
            _check(_libc.posix_spawnattr_setflags(attr, ctypes.c_short(_SETSID | _SETSIGMASK | _SETSIGDEF)))
            pid = ctypes.c_int(0)
            argv = _cstrings(args)
            envp = _cstrings([f"{k}={v}" for k, v in env.items()])
            _check(_libc.posix_spawn(ctypes.byref(pid), os.fsencode(program), actions, attr, argv, envp))
            return SpawnedChild(pid.value)
        finally:
            _libc.posix_spawnattr_destroy(attr)
    finally:
        _libc.posix_spawn_file_actions_destroy(actions)

