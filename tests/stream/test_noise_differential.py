"""Differential test of the Noise record layer: the compiled and the pure ``Transport`` (one
source, ``stream/_noiserec_py.py``) given the same keys and the same random operations must
produce the same records byte for byte (AES-GCM is deterministic for a key and nonce), the
same messages, the same errors and the same counters."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from execrelay.stream.noise_limits import MAX_RECORDS, RECORD_PLAINTEXT_BYTES, NoiseError

KEY_A, KEY_B, HASH = b"a" * 32, b"b" * 32, b"h" * 32

messages = st.binary(min_size=0, max_size=300) | st.sampled_from(
    [b"x" * (RECORD_PLAINTEXT_BYTES - 4), b"y" * (RECORD_PLAINTEXT_BYTES - 3),
     b"z" * (2 * RECORD_PLAINTEXT_BYTES + 7)])
ops = st.lists(st.one_of(
    st.tuples(st.just("seal"), messages),
    st.tuples(st.just("seal_many"), st.lists(messages, max_size=6)),
    st.tuples(st.just("seal_record"), st.binary(max_size=40)),
    # deliver one sealed record: which one (an index into what was sealed), tampered or not
    st.tuples(st.just("open"), st.tuples(st.integers(0, 40), st.booleans())),
    st.tuples(st.just("open_bad_seq"), st.integers(-3, 2**64 + 5)),
    st.tuples(st.just("near_limit"), st.integers(0, 3)),
), max_size=60)


def _apply(mod, program):
    tx = mod.Transport(KEY_A, KEY_B, HASH)
    rx = mod.Transport(KEY_B, KEY_A, HASH)
    sealed: list[tuple[int, bytes]] = []
    log: list[object] = []
    for name, arg in program:
        try:
            if name == "seal":
                out = tx.seal(arg)
                sealed += out
            elif name == "seal_many":
                out = tx.seal_many(arg)
                sealed += out
            elif name == "seal_record":
                out = [tx.seal_record(arg)]
                sealed += out
            elif name == "open":
                if not sealed:
                    continue
                seq, rec = sealed[arg[0] % len(sealed)]
                if arg[1]:
                    rec = rec[:-1] + bytes([rec[-1] ^ 1])
                out = rx.open(seq, rec)
            elif name == "open_bad_seq":
                out = rx.open(arg, b"\0" * 20)
            else:   # move the sender next to the nonce limit
                tx._tx_n = MAX_RECORDS - arg  # noqa: SLF001
                continue
            log.append((name, out))
        except NoiseError as exc:
            log.append((name, type(exc).__name__, str(exc)))
        log.append((tx.next_send_seq, rx.next_recv_seq))
    return log


@settings(max_examples=150, deadline=None)
@given(ops)
def test_noise_record_twins_agree(twin_pair, program):
    fast, pure = twin_pair("noiserec")
    assert fast.Transport is not pure.Transport
    assert _apply(fast, program) == _apply(pure, program)
