"""The remote executor's static Noise key: generated per process, or kept in a key file
(``exec-server --key-file PATH``, docs/noise.md §Our executor).

The file holds one line, ``execrelay-noise-key-v1 <base64 of the 96 private bytes>``.  It is
created with mode 0600 (never through a umask-dependent open) and refused when group or others
may read it, as ssh refuses a readable private key: the key is the executor's identity, and
whoever holds it can answer harnesses in its name.  Nothing here logs the key.
"""
from __future__ import annotations

import base64
import binascii
import os
import stat

from ..stream.noise import StaticKeyPair

KEY_FILE_HEADER = "execrelay-noise-key-v1"


class KeyFileError(ValueError):
    """The key file cannot be used (unreadable, malformed, too open); the text says why."""


def load_or_create(path: str) -> tuple[StaticKeyPair, bool]:
    """The key pair stored at ``path`` (created 0600 if absent): ``(key, created)``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return _load(path), False
    except OSError as exc:
        raise KeyFileError(f"cannot create Noise key file `{path}`: {exc.strerror}") from None
    key = StaticKeyPair.generate()
    line = f"{KEY_FILE_HEADER} {base64.b64encode(key.private_bytes()).decode('ascii')}\n"
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise KeyFileError(f"cannot write Noise key file `{path}`: {exc.strerror}") from None
    return key, True


def _load(path: str) -> StaticKeyPair:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise KeyFileError(f"cannot read Noise key file `{path}`: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"Noise key file `{path}` is not a regular file")
        if mode & 0o077:
            raise KeyFileError(f"Noise key file `{path}` is accessible by group or others "
                               f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it")
        raw = f.read(4096)
    parts = raw.decode("ascii", "replace").split()
    if len(parts) != 2 or parts[0] != KEY_FILE_HEADER:
        raise KeyFileError(f"Noise key file `{path}` is not an {KEY_FILE_HEADER} key file")
    try:
        return StaticKeyPair.from_private_bytes(base64.b64decode(parts[1], validate=True))
    except (binascii.Error, ValueError):
        raise KeyFileError(f"Noise key file `{path}` holds a malformed key") from None


__all__ = ["load_or_create", "KeyFileError", "KEY_FILE_HEADER"]
