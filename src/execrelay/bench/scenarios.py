"""Request shapes for the executor benchmarks (bytes templates, no JSON encoder per request).

The load generator (:mod:`.load`) sends ``Scenario.payload(id)`` on every stream; the files the
fs scenarios read are created once per work directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable


@dataclass
class Scenario:
    """A request shape: ``prefix + str(id) + suffix`` bytes (unique ids, no JSON encoder)."""

    name: str
    prefix: bytes
    suffix: bytes
    per_id_suffix: Callable[[int], bytes] | None = None  # for unique processIds
    setup: Callable[[str], None] | None = None
    #: run on a RELIABLE stream (segmented, acked; only as the isolation runs' bulk stream)
    reliable: bool = False

    def payload(self, rid: int) -> bytes:
        if self.per_id_suffix is not None:
            return self.prefix + str(rid).encode() + self.per_id_suffix(rid)
        return self.prefix + str(rid).encode() + self.suffix


def _fs_call(name: str, method: str, path: str) -> Scenario:
    """Scenario ``name``: an ``fs/<method>`` request on ``path`` (no sandbox)."""
    return Scenario(name, b'{"id":', b',"method":"fs/%s","params":{"path":"%s","sandbox":null}}'
                    % (method.encode(), path.encode()))


def scenarios(workdir: str) -> dict[str, Scenario]:
    def mkfile(name: str, size: int) -> str:
        path = os.path.join(workdir, name)
        if not os.path.exists(path) or os.path.getsize(path) != size:
            with open(path, "wb") as fh:
                fh.write(os.urandom(size))
        return path

    small = mkfile("file64k.bin", 64 * 1024)
    big = mkfile("file16m.bin", 16 * 1024 * 1024)
    mid = mkfile("file8m.bin", 8 * 1024 * 1024)
    # base64 of 47 MiB is 62.7 MiB: the largest readFile reply under the 64 MiB message cap
    huge = mkfile("file47m.bin", 47 * 1024 * 1024)
    reliable64m = _fs_call("reliable64m", "readFile", huge)
    reliable64m.reliable = True
    return {
        "trivial": Scenario("trivial", b'{"id":', b',"method":"bench/unknown","params":{}}'),
        "getMetadata": _fs_call("getMetadata", "getMetadata", workdir),
        "readFile64k": _fs_call("readFile64k", "readFile", small),
        "readFile16m": _fs_call("readFile16m", "readFile", big),
        "readFile8m": _fs_call("readFile8m", "readFile", mid),
        "reliable64m": reliable64m,
        "processTrue": Scenario(
            "processTrue", b'{"id":', b"",
            per_id_suffix=lambda rid: (b',"method":"process/start","params":{"processId":"p%d",'
                                       b'"argv":["true"],"cwd":"/tmp","env":{"PATH":"/usr/bin:/bin"},'
                                       b'"tty":false,"pipeStdin":false,"arg0":null}}' % rid)),
    }


INITIALIZE = b'{"id":0,"method":"initialize","params":{"clientName":"bench","resumeSessionId":null}}'
INITIALIZED = b'{"method":"initialized","params":{}}'
