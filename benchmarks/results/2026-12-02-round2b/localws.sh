#!/bin/bash
# local ws 8 conns x w16, unknown method, ours vs Rust, interleaved 3 rounds; $1 = pin|nopin
cd /work/main
CODEX=$(.venv/bin/python -c "from execrelay.bench.executors import find_codex; print(find_codex())")
D=""; M=""
if [ "$1" = pin ]; then D="taskset -c 0"; M="taskset -c 1"; fi
for r in 1 2 3; do
  for who in ours rust; do
    if [ $who = ours ]; then cmd="$M .venv/bin/python -m execrelay exec-server --listen ws://127.0.0.1:0"; else cmd="$M $CODEX exec-server --listen ws://127.0.0.1:0"; fi
    echo "== $1 round $r $who"
    timeout 120 $D .venv/bin/python benchmarks/exec_server_e2e.py --server-cmd "$cmd" --connections 8 --window 16 --scenario unknown getMetadata 2>&1 | grep -v "^#" | tail -3
  done
done
