"""The fixture trees the 0.171.0 probes ran against (``data/*.json``, key ``fixture``), rebuilt
under a fresh directory so the recorded replies (``<root>``-relative) apply to it."""
from __future__ import annotations

import os
from pathlib import Path


def build_probe_tree(base: Path, fx: dict, file_text: str = "") -> None:
    """Create ``fx``'s dirs, files (each holding ``file_text``), fifos and symlinks below ``base``."""
    for d in fx["dirs"]:
        (base / d).mkdir(parents=True)
    for f in fx["files"]:
        (base / f).write_text(file_text)
    for f in fx.get("fifos", ()):
        os.mkfifo(base / f)
    for link, target in fx["symlinks"].items():
        os.symlink(target, base / link)
