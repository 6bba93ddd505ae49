"""The request counters' twins (compiled C fields, pure Python) count the same."""
from __future__ import annotations

import time

import pytest


@pytest.fixture
def stats_class(twin):
    return twin("reqstats").MethodStats


def test_begin_end_counts_bytes_and_one_bucket(stats_class) -> None:
    s = stats_class("m", None)
    assert (s.count, s.sum_ns, s.bytes_in, s.bytes_out, s.log, s.name) == (0, 0, 0, 0, None, "m")
    s.begin(b"12345")
    time.sleep(0.002)
    s.end(b"abc")
    assert (s.count, s.bytes_in, s.bytes_out) == (1, 5, 3)
    assert s.sum_ns == s.last_ns >= 2_000_000
    b = s.last_ns.bit_length()
    assert s.buckets[b] == 1 and sum(s.buckets) == 1 and len(s.buckets) == 65
    s.begin("é")  # a str counts its length, as the transports hand it over
    t0 = s.started
    s.end_since(t0, 7)
    assert (s.count, s.bytes_in, s.bytes_out) == (2, 6, 10)


def test_outcome_counters_and_public_fields(stats_class) -> None:
    s = stats_class("m", print)
    s.errors += 2
    s.internal += 1
    s.cancelled += 3
    s.log = len
    s.handler = None
    s.add_bytes_in(9)
    assert (s.errors, s.internal, s.cancelled, s.log, s.handler, s.bytes_in) == (2, 1, 3, len, None, 9)


def test_slot_is_the_bit_length_of_the_duration(stats_class) -> None:
    """Every duration lands in slot dt.bit_length() (both twins read CLOCK_MONOTONIC)."""
    s = stats_class("m", None)
    for back in (0, 1000, 10**6, 10**9, 2**40):
        s.begin(b"")
        before = list(s.buckets)
        s.end_since(s.started - back, 0)
        assert s.last_ns >= back
        changed = [i for i, (a, b) in enumerate(zip(before, s.buckets)) if a != b]
        assert changed == [s.last_ns.bit_length()]
    assert s.count == 5 and s.sum_ns >= 10**9 + 2**40


def test_end_error_counts_one_error_and_files_the_request(stats_class) -> None:
    """``end_error`` is ``errors += 1`` then ``end``: the unknown-method path's one call."""
    s = stats_class("unknown", None)
    s.begin(b"{}")
    s.end_error(b"error!")
    assert (s.errors, s.internal, s.count, s.bytes_in, s.bytes_out) == (1, 0, 1, 2, 6)
    s.begin(b"")
    s.end_error(b"")
    assert (s.errors, s.count, s.bytes_out) == (2, 2, 6)
