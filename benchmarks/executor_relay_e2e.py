#!/usr/bin/env python
"""Executor over one relay websocket: execrelay fast / pure vs the Rust codex 0.131.0 executor.

A thin entry point for the executor step of ``execrelay bench`` (src/execrelay/bench/): the
driver plays the rendezvous (registry + picows websocket), starts each executor as a child
process and drives N legacy streams with ``window`` requests outstanding each, interleaving the
executors A B C per configuration (docs/benchmarks.md §Measurement rules).  Examples:

    python benchmarks/executor_relay_e2e.py                         # quick matrix, all three
    python benchmarks/executor_relay_e2e.py --configs trivial:8:16,trivial:64:16 --reps 5
    python benchmarks/executor_relay_e2e.py --executors fast,rust --out /tmp/e2e

Every option of ``execrelay bench`` works here; this only fixes ``--only executor`` and
defaults to ``--quick``.
"""
from __future__ import annotations

import sys

from execrelay.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not any(a in ("--tiny", "--full") for a in argv) and "--quick" not in argv:
        argv = ["--quick", *argv]
    argv = [a for a in argv if a != "--full"]
    raise SystemExit(main(["bench", "--only", "executor", *argv]))
