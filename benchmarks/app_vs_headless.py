"""Training throughput in the app vs headless, same settings, interleaved in one run.

The app runs in a real terminal (a detached tmux session of 100×30) and quits when the run
ends; the headless run writes to a pipe. Each prints `train_images_per_s` from summary.json.

    python benchmarks/app_vs_headless.py [--rounds 2] [--train-limit 20000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def summary(root: Path, name: str, timeout: float) -> dict:
    path = root / name / "summary.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"run {name} did not finish within {timeout:.0f} s")
        time.sleep(0.5)
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=20000)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed to run the app in a terminal: apt-get install tmux")
    exe = [sys.executable, "-m", "aml_tui"]
    root = Path(tempfile.mkdtemp(prefix="aml-tui-bench-"))
    common = ["train", "fashion-cnn", "--epochs", str(args.epochs), "--train-limit",
              str(args.train_limit), "--test-limit", "2000", "--offline",
              "--checkpoints", str(root)]  # fmt: skip
    results: dict[str, list[float]] = {"headless": [], "app": []}
    for i in range(args.rounds):
        subprocess.run([*exe, *common, "--no-ui", "--name", f"headless-{i}"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        results["headless"].append(summary(root, f"headless-{i}", 5)["train_images_per_s"])
        command = " ".join([*exe, *common, "--name", f"app-{i}"])
        session = f"aml-tui-bench-{i}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                        command], check=True)  # fmt: skip
        results["app"].append(summary(root, f"app-{i}", 3600)["train_images_per_s"])
        time.sleep(1)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
        time.sleep(2)
        subprocess.run(["tmux", "kill-session", "-t", session], check=False,
                       stderr=subprocess.DEVNULL)  # fmt: skip
    for kind, values in results.items():
        print(f"{kind:>8}: " + ", ".join(f"{v:,.0f}" for v in values) + " img/s")
    headless = sum(results["headless"]) / len(results["headless"])
    app = sum(results["app"]) / len(results["app"])
    print(f"app / headless = {app / headless:.3f} ({100 * (app / headless - 1):+.1f}%)")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
