"""Long mutation fuzz of the compiled frame decoder against the reference (pure twin = upb).

    python benchmarks/fuzz_codec.py [--cases 5000000] [--seed N] [--seconds 600]

Same oracle as tests/wire/test_fuzz.py, with a fresh seed per run and a time bound; prints the
first disagreement (hex) and exits 1, or the number of cases and acceptance rate.
"""
from __future__ import annotations

import argparse
import pathlib
import random
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "wire"))

from test_fuzz import corpus, mutate, outcome, peek_outcome  # noqa: E402

from execrelay._accel import load_both  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=600.0)
    args = ap.parse_args()
    compiled, pure = load_both("execrelay.wire._codec_c", "execrelay.wire._codec_py")
    if compiled is None:
        print("the Cython codec is not built; nothing to fuzz", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    pool = corpus(pure)
    deadline = time.monotonic() + args.seconds
    accepted = done = 0
    for done in range(1, args.cases + 1):
        buf = mutate(rng, rng.choice(pool), pool) if done % 10 else bytes(
            rng.randrange(256) for _ in range(rng.randint(0, 40)))
        ref, got = outcome(pure, buf), outcome(compiled, buf)
        if got != ref or peek_outcome(compiled, buf) != peek_outcome(pure, buf):
            print(f"seed {seed}: disagreement on {buf.hex()}\n compiled={got}\n reference={ref}")
            return 1
        if ref[0] == "ok":
            accepted += 1
            if len(pool) < 500:
                pool.append(buf)
        if done % 10000 == 0 and time.monotonic() > deadline:
            break
    print(f"seed {seed}: {done} cases, {accepted / done:.1%} accepted, no disagreement")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
