"""Regenerate the checked-in protobuf bindings from ``proto/``.

Usage: ``python proto/regen.py`` (writes ``src/execrelay/wire/relay_pb2.py``)
or ``python proto/regen.py --check`` (exit 1 if the checked-in file is stale).

The bindings are checked in so that installing execrelay never needs protoc; this script and
the test that calls ``--check`` keep them honest.  The output depends on the grpcio-tools
version, which is pinned in ``pyproject.toml``'s dev extra.
"""
from __future__ import annotations

import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO = "codex/exec_server/relay/v1/relay.proto"
TARGET = ROOT / "src" / "execrelay" / "wire" / "relay_pb2.py"


def generate() -> bytes:
    """Run protoc (from grpcio-tools) into a scratch directory and return the module text."""
    from grpc_tools import protoc  # dev dependency, imported lazily

    with tempfile.TemporaryDirectory() as out:
        rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", str(PROTO_DIR / PROTO)])
        if rc != 0:
            raise SystemExit(f"protoc failed with exit code {rc}")
        return (pathlib.Path(out) / PROTO.replace(".proto", "_pb2.py")).read_bytes()


def main(argv: list[str]) -> int:
    fresh = generate()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_bytes() != fresh:
            print(f"{TARGET} is stale: run python proto/regen.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_bytes(fresh)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
