"""Operator plumbing every command shares: log flags and set-up, HOST:PORT, the stop signals.

Why one module: ``--log-level``/``--log-format`` must mean the same in every command
(docs/operations.md §Logs), and the rendezvous and the executor stop the same way on SIGTERM
(first: drain, second: exit at once; docs/operations.md §Graceful drain).

Log lines: one line per event.  Events carry their fields (stream id, session id, method,
trace context, ...) in ``extra={"fields": {...}}``; the text format appends them as
``key=value``, the JSON format as members.  Secrets never reach the output: every line passes
:func:`redact` (``sig=`` query values, ``Bearer`` credentials, and every value registered
with :func:`register_secret`, e.g. the registration bearer and the rendezvous secret).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import sys
import time
from typing import Any

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")

_SIG = re.compile(r"(?i)(sig=)[^&\s\"']+")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_SECRETS: set[str] = set()
#: shorter values are not registered as secrets (replacing them would garble ordinary text)
_SECRET_MIN = 8
REDACTED = "[redacted]"


def register_secret(value: str | bytes | None) -> None:
    """Never print ``value`` in a log line (tokens, keys, secrets read at start-up)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return
    if value:
        value = value.strip()
        if len(value) >= _SECRET_MIN:
            _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` without credentials (see the module docstring)."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "sig=" in text or "SIG=" in text:
        text = _SIG.sub(r"\1" + REDACTED, text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1" + REDACTED, text)
    return text


def add_log_args(p: argparse.ArgumentParser, default_level: str = "warning") -> None:
    """``--log-level`` and ``--log-format`` on a command's parser."""
    p.add_argument("--log-level", type=str.lower, choices=LEVELS, default=default_level,
                   help=f"least severe log events shown on stderr (default {default_level})")
    p.add_argument("--log-format", choices=FORMATS, default="text",
                   help="text (one human-readable line per event) or json (one object per line)")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{ts}.{int(record.msecs):03d}Z {record.levelname} {record.name}: {record.getMessage()}"
        for key, value in _fields(record).items():
            line += f" {key}={value}"
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return redact(line.replace("\n", "\\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for key, value in _fields(record).items():
            if key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str, ensure_ascii=False))


def setup_logging(args: argparse.Namespace) -> None:
    """Configure the root logger from ``--log-level``/``--log-format`` (stderr, one line per event)."""
    level = getattr(args, "log_level", "warning") or "warning"
    fmt = getattr(args, "log_format", "text") or "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # aiohttp's access logger would write a line per scrape; ours are the events that matter
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def parse_hostport(text: str, flag: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too; empty host and ``localhost``: 127.0.0.1) -> (host,
    port); ValueError naming ``flag`` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{flag} wants HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    # "localhost" may resolve to two addresses, each getting its own random port with port 0.
    return ("127.0.0.1" if host == "localhost" else host), int(port)


class StopSignals:
    """SIGTERM/SIGINT/SIGHUP handling in two stages: the first sets :attr:`stop` (drain, or
    shut down), any later one sets :attr:`abort` (exit at once).  Installed before a command
    prints its address, so a supervisor signalling right after reading it still gets a
    clean stop."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> None:
        self.stop: asyncio.Future[None] = loop.create_future()
        self.abort: asyncio.Future[None] = loop.create_future()
        #: the signal that set :attr:`stop` (0 when set otherwise)
        self.signal = 0
        for sig in signals:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                pass

    def _on_signal(self, sig: int) -> None:
        if not self.stop.done():
            self.signal = sig
            self.stop.set_result(None)
            logging.getLogger("execrelay.signals").info(
                "stop requested", extra={"fields": {"signal": signal.Signals(sig).name}})
        elif not self.abort.done():
            self.abort.set_result(None)
            logging.getLogger("execrelay.signals").warning(
                "second stop signal: exiting at once", extra={"fields": {"signal": signal.Signals(sig).name}})

    def request_stop(self) -> None:
        """Set :attr:`stop` without a signal (e.g. the parent closed stdin)."""
        if not self.stop.done():
            self.stop.set_result(None)


