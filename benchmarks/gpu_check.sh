#!/usr/bin/env bash
# aml-tui on a CUDA machine: training images/s of the notebook pipeline and of aml-tui (eager
# and --compile) for fashion-cnn and resnet18-scratch, plus evaluation time and peak memory.
# Under 5 minutes on one recent GPU. Needs the package installed (pip install -e .) and the
# FashionMNIST files: --data-dir DIR, $AML_TUI_DATA, ./data or /usr/share/datasets/fashion-mnist.
#
#   benchmarks/gpu_check.sh [--data-dir DIR] [any other bench_train.py option]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[[ -x .venv/bin/python && -z ${PYTHON:-} ]] && python=.venv/bin/python

if ! "$python" -c 'import torch, aml_tui' 2>/dev/null; then
    echo "gpu_check: $python cannot import torch and aml_tui: pip install -e . first" >&2
    exit 2
fi
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: torch sees no CUDA GPU here; run benchmarks/bench_train.py for the CPU" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$python" benchmarks/bench_train.py --device cuda --images 60000 --resnet-images 20000 \
    --rounds 2 --compile "$@"
