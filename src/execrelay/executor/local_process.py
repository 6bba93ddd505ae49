"""The local process manager: spawn, stream output, retain the newest 1 MiB, long-poll, kill.

The ``process/*`` JSON-RPC handlers live in :mod:`.process`; this module knows nothing of
JSON-RPC requests, only of a session to notify.

Output is read with ``loop.add_reader`` on the raw pipe/PTY fds (no asyncio subprocess
transports, no Task per process) and exit is watched through a pidfd, so a process costs a few
callbacks per chunk.  Every event takes the next per-process seq (contiguous from 1, shared by
output, ``exited`` and ``closed``: the real client stalls on a gap, docs/exec-server.md §Methods).  Each
process runs in its own session/process group; terminate and session expiry kill the whole
group (0.131.0 only kills the direct child; killing the group is deliberate so nothing leaks).
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pwd
import shutil
import signal
import struct as _struct
import subprocess
import termios
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from .params import b64encode
from .ptyspawn import SpawnedChild, spawn_with_tty

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection
    from .server import ExecServer
    from .session import Session

_dumps = orjson.dumps
DEFAULT_SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PTY_ROWS, PTY_COLS = 24, 80


def _login_shell() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:  # pragma: no cover
        return "/bin/sh"


class ManagedProcess:
    """One child process of a session and its retained output."""

    __slots__ = (
        "session", "process_id", "popen", "pid", "tty", "loop", "server", "next_seq", "chunks",
        "retained", "exited", "exit_code", "closed", "waiters", "_fds", "_pidfd", "_stdin_fd",
        "_stdin_buf", "stdin_open", "_evict", "_paused", "_retain_limit", "_chunk", "_killed", "_killed_group", "_slave_fd",
        "v171", "_write_ids",
    )

    def __init__(self, server: "ExecServer", session: "Session", process_id: str, tty: bool,
                 v171: bool = False) -> None:
        self.server = server
        #: started by a 0.171 request: 128+N exit codes, ``sandboxDenied`` in ``process/exited``
        self.v171 = v171
        self._write_ids: set[str] | None = None
        self.session = session
        self.process_id = process_id
        self.tty = tty
        self.loop = asyncio.get_running_loop()
        self.popen: subprocess.Popen | SpawnedChild | None = None
        self.pid = 0
        self.next_seq = 1
        #: retained (seq, stream, base64) newest-last, at most ``retained`` raw bytes in total
        self.chunks: deque[tuple[int, str, str, int]] = deque()
        self.retained = 0
        self.exited = False
        self.exit_code: int | None = None
        self.closed = False
        self.waiters: list[asyncio.Future] = []
        self._fds: dict[int, str] = {}  # open output fd -> stream name
        self._pidfd = -1
        self._stdin_fd = -1
        self._stdin_buf = bytearray()
        self.stdin_open = False
        self._evict: asyncio.TimerHandle | None = None
        self._paused = False
        self._killed = False
        self._killed_group = False
        self._slave_fd = -1
        self._retain_limit = server.config.retained_output_bytes
        self._chunk = server.config.output_chunk_bytes

    # ------------------------------------------------------------------ spawn
    def spawn(self, argv: list[str], cwd: str, env: dict[str, str], arg0: str | None, pipe_stdin: bool) -> None:
        program = argv[0]
        if "/" not in program:
            found = shutil.which(program, path=env.get("PATH") or DEFAULT_SEARCH_PATH)
            if found is None:
                raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
            program = found
        args = [arg0 if arg0 is not None else argv[0], *argv[1:]]
        if self.tty:
            self._spawn_pty(program, args, cwd, env)
        else:
            self._spawn_pipes(program, args, cwd, env, pipe_stdin)
        self.pid = self.popen.pid  # type: ignore[union-attr]
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except OSError:  # pragma: no cover - very old kernels: poll instead
            self._pidfd = -1
            self.loop.call_later(0.05, self._poll_exit)
        else:
            self.loop.add_reader(self._pidfd, self._on_exit)
        for fd in self._fds:
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, self._on_readable, fd)

    def _spawn_pipes(self, program: str, args: list[str], cwd: str, env: dict[str, str], pipe_stdin: bool) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r = in_w = -1
        if pipe_stdin:
            in_r, in_w = os.pipe()
        try:
            self.popen = subprocess.Popen(
                args, executable=program, cwd=cwd, env=env,
                stdin=in_r if pipe_stdin else subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                start_new_session=True, close_fds=True,
            )
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r):
                if fd >= 0:
                    os.close(fd)
        self._fds = {out_r: "stdout", err_r: "stderr"}
        if pipe_stdin:
            self._stdin_fd = in_w
            os.set_blocking(in_w, False)
            self.stdin_open = True

    def _spawn_pty(self, program: str, args: list[str], cwd: str, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, _struct.pack("HHHH", PTY_ROWS, PTY_COLS, 0, 0))
        env = dict(env)
        env.setdefault("SHELL", _login_shell())

        try:
            # no preexec_fn (not thread-safe): the child opens the terminal after setsid
            self.popen = spawn_with_tty(program, args, cwd, env, os.ttyname(slave))
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        # Keep our copy of the slave open until the child exits: if the child's close of its
        # last slave fd released the terminal, the kernel would hang up the session and a child
        # exiting normally after EOF could be reported as killed by SIGHUP (exit code 1).
        self._slave_fd = slave
        self._fds = {master: "pty"}
        self._stdin_fd = master
        self.stdin_open = True

    # ----------------------------------------------------------------- output
    def _on_readable(self, fd: int) -> bool:
        """Read one chunk; True if output was emitted (the return value is for :meth:`_drain_output`)."""
        try:
            data = os.read(fd, self._chunk)
        except BlockingIOError:
            return False
        except OSError:  # EIO on a PTY master once the slave side is gone = EOF
            data = b""
        if not data:
            self._close_fd(fd)
            return False
        self._emit_output(self._fds[fd], data)
        conn = self.session.conn
        if conn is not None and conn.write_paused and not self._paused:
            self._pause(conn)
        return True

    def _pause(self, conn: "RpcConnection") -> None:
        self._paused = True
        for fd in self._fds:
            self.loop.remove_reader(fd)
        conn.add_paused_source(self._resume)

    def _resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        for fd in self._fds:
            self.loop.add_reader(fd, self._on_readable, fd)

    def _emit_output(self, stream: str, data: bytes) -> None:
        seq = self.next_seq
        self.next_seq = seq + 1
        chunk = b64encode(data)
        n = len(data)
        chunks = self.chunks
        chunks.append((seq, stream, chunk, n))
        self.retained += n
        limit = self._retain_limit
        while self.retained > limit and len(chunks) > 1:
            self.retained -= chunks.popleft()[3]
        self.session.notify_bytes(_dumps({"method": "process/output", "params": {
            "processId": self.process_id, "seq": seq, "stream": stream, "chunk": chunk}}))
        self._wake()

    def _close_fd(self, fd: int) -> None:
        if fd in self._fds:
            if not self._paused:
                self.loop.remove_reader(fd)
            del self._fds[fd]
            if fd == self._stdin_fd:
                self._stop_stdin_writer()
                self._stdin_fd = -1
            os.close(fd)
        self._maybe_closed()

    def _poll_exit(self) -> None:  # pragma: no cover - fallback without pidfd
        rc = None if self.popen is None else self.popen.poll()
        if rc is not None:
            self._exited(rc)
        elif self.popen is not None:
            self.loop.call_later(0.05, self._poll_exit)

    def _on_exit(self) -> None:
        popen = self.popen
        rc = None if popen is None else popen.poll()
        if rc is None:
            return
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if self.v171 and not self._paused:
            self._drain_output()
        self._exited(rc)

    def _drain_output(self) -> None:
        """Emit what the process wrote before it exited, so its output precedes ``exited`` (as
        0.171.0 orders them, docs/dialects.md §New methods); later writes by children still
        arrive after."""
        for fd in list(self._fds):
            while fd in self._fds and not self._paused and self._on_readable(fd):
                pass

    def _exited(self, rc: int) -> None:
        if rc < 0:  # killed by signal N: 0.131.0 reports -1 for pipes, 0.171.0 128+N; both 1 for a PTY
            rc = 1 if self.tty else 128 - rc if self.v171 else -1
        self.exited = True
        self.exit_code = rc
        seq = self.next_seq
        self.next_seq = seq + 1
        params: dict[str, Any] = {"processId": self.process_id, "seq": seq, "exitCode": rc}
        if self.v171:
            params["sandboxDenied"] = False  # no sandbox, nothing denied
        self.session.notify_bytes(_dumps({"method": "process/exited", "params": params}))
        if self._slave_fd >= 0:
            os.close(self._slave_fd)
            self._slave_fd = -1
        if self._stdin_fd >= 0 and not self.tty:
            self._stop_stdin_writer()
            os.close(self._stdin_fd)
            self._stdin_fd = -1
        self._wake()
        self._maybe_closed()

    def _maybe_closed(self) -> None:
        if self.closed or not self.exited or self._fds:
            return
        self.closed = True
        seq = self.next_seq
        self.next_seq = seq + 1
        self.session.notify_bytes(_dumps({"method": "process/closed", "params": {
            "processId": self.process_id, "seq": seq}}))
        self._wake()
        self._evict = self.loop.call_later(self.server.config.exited_process_retention, self._evict_now)

    def _evict_now(self) -> None:
        self._evict = None
        if self.session.processes.get(self.process_id) is self:
            del self.session.processes[self.process_id]

    def _wake(self) -> None:
        waiters = self.waiters
        if waiters:
            self.waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    # ------------------------------------------------------------------ stdin
    def first_write(self, write_id: str) -> bool:
        """Record a 0.171 ``writeId``; False if it was seen before (the write is not repeated)."""
        ids = self._write_ids
        if ids is None:
            ids = self._write_ids = set()
        elif write_id in ids:
            return False
        ids.add(write_id)
        return True

    def write_stdin(self, data: bytes) -> None:
        fd = self._stdin_fd
        if fd < 0 or not data:
            return
        if self._stdin_buf:
            self._stdin_buf += data
            return
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        if n < len(data):
            self._stdin_buf += data[n:]
            self.loop.add_writer(fd, self._drain_stdin)

    def _drain_stdin(self) -> None:
        fd = self._stdin_fd
        try:
            n = os.write(fd, self._stdin_buf)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._stdin_buf)
        del self._stdin_buf[:n]
        if not self._stdin_buf:
            self.loop.remove_writer(fd)

    def _stop_stdin_writer(self) -> None:
        if self._stdin_buf and self._stdin_fd >= 0:
            self.loop.remove_writer(self._stdin_fd)
        self._stdin_buf.clear()

    # ------------------------------------------------------------------- kill
    @property
    def killed(self) -> bool:
        """True once :meth:`kill_group` sent SIGKILL (0.131.0 then drops the stdin pipe)."""
        return self._killed

    def kill_group(self) -> bool:
        """SIGKILL the process group (pid == pgid). True if the process was still running.

        The group is signalled even after its leader exited: background children it left in
        the group must not outlive ``process/terminate`` or the session.  The kernel does not
        reuse a pid while a group of that id has members, so the signal reaches only ours."""
        if self.pid <= 0 or self._killed or self._killed_group:
            return False
        if self.exited:  # the leader is gone: its group only (``killed`` stays as it was)
            self._killed_group = True
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return False
        self._killed = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
        return True

    def interrupt(self) -> None:
        """``process/signal interrupt``: SIGINT to the process group (nothing once exited)."""
        if self.exited or self.pid <= 0:
            return
        try:
            os.killpg(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def forget(self) -> None:
        """Release fds and timers without notifications (session expiry / shutdown)."""
        loop = self.loop
        if self._evict is not None:
            self._evict.cancel()
            self._evict = None
        for fd in list(self._fds):
            if not self._paused:
                loop.remove_reader(fd)
            if fd == self._stdin_fd:
                self._stdin_fd = -1
            os.close(fd)
        self._fds.clear()
        if self._stdin_fd >= 0:
            self._stop_stdin_writer()
            os.close(self._stdin_fd)
            self._stdin_fd = -1
        if self._slave_fd >= 0:
            os.close(self._slave_fd)
            self._slave_fd = -1
        if self._pidfd >= 0:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        popen = self.popen
        if popen is not None and popen.poll() is None:
            # reap in the background so no zombie is left
            loop.run_in_executor(None, _reap, popen)
        self._wake()

    # ------------------------------------------------------------------- read
    def read_result(self, after_seq: int, max_bytes: int | None, v171: bool = False) -> dict:
        """The ``process/read`` result; 0.171 adds ``sandboxDenied``."""
        out: list[dict[str, Any]] = []
        budget = max_bytes
        total = 0
        last = -1
        truncated = False
        for seq, stream, chunk, n in self.chunks:
            if seq <= after_seq:
                continue
            if budget is not None and out and total + n > budget:
                truncated = True
                break
            out.append({"seq": seq, "stream": stream, "chunk": chunk})
            total += n
            last = seq
        # 0.131.0: the seq after the last chunk returned; 0.171.0: that only when maxBytes cut
        # the answer short, else the next seq the process will use (past exited/closed)
        next_seq = last + 1 if out and (truncated or not v171) else self.next_seq
        result = {
            "chunks": out,
            "nextSeq": next_seq,
            "exited": self.exited,
            "exitCode": self.exit_code,
            "closed": self.closed,
            "failure": None,
        }
        if v171:
            result["sandboxDenied"] = False
        return result

    async def long_poll(self, after_seq: int, max_bytes: int | None, wait_ms: int, v171: bool = False) -> dict:
        """:meth:`read_result` once output past ``after_seq`` exists or ``wait_ms`` elapsed."""
        loop = self.loop
        deadline = loop.time() + wait_ms / 1000.0
        while not self.ready_for(after_seq):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            fut = loop.create_future()
            self.waiters.append(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except asyncio.TimeoutError:
                break
        return self.read_result(after_seq, max_bytes, v171)

    def ready_for(self, after_seq: int) -> bool:
        if self.closed:
            return True
        if self.chunks and self.chunks[-1][0] > after_seq:
            return True
        return self.exited and after_seq < self.next_seq - 1


def _reap(popen: "subprocess.Popen | SpawnedChild") -> None:
    try:
        popen.wait(timeout=30)
    except Exception:  # pragma: no cover
        pass
