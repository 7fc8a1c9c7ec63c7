#!/usr/bin/env bash
# Aggregate training speed of one sweep run with --jobs 1 and with --jobs 2, in one go, on the
# real FashionMNIST files: 4 runs (seeds 0-3) of fashion-cnn, 1 epoch of N training images.
# The order alternates over rounds so that drift of a shared machine hits both alike.
# Usage: benchmarks/sweep_jobs.sh [ROUNDS] [TRAIN_IMAGES]   (run it on a quiet machine)
set -euo pipefail
rounds=${1:-1}
images=${2:-10000}
data=${AML_TUI_DATA:-/usr/share/datasets/fashion-mnist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {  # $1 = jobs, $2 = round
    local root="$work/j$1-r$2" start end
    start=$(date +%s.%N)
    aml-tui sweep fashion-cnn --seeds 0-3 --epochs 1 --train-limit "$images" --test-limit 1000 \
        --data-dir "$data" --offline --device cpu --checkpoints "$root" --name bench \
        --jobs "$1" --no-ui >/dev/null
    end=$(date +%s.%N)
    python3 - "$1" "$start" "$end" "$images" "$root" <<'PY'
import json, subprocess, sys
jobs, start, end, images, root = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
shown = subprocess.run(["aml-tui", "sweep", "show", "bench", "--json", "--checkpoints", root],
                       capture_output=True, text=True, check=True).stdout
speeds = [run["train_images_per_s"] for run in json.loads(shown)["runs"]]
wall = end - start
print(f"--jobs {jobs}: {4 * images / wall:,.0f} training images/s over the whole sweep "
      f"(wall {wall:.1f} s, start-up and evaluation included); per run "
      f"{', '.join(f'{s:,.0f}' for s in speeds)} img/s while training")
PY
}
for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then run 1 "$round"; run 2 "$round"; else run 2 "$round"; run 1 "$round"; fi
done
