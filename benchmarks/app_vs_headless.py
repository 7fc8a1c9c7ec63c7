"""Training throughput in the app vs headless, same settings, interleaved in one run.

Per round: headless writing to a log (no terminal), headless in a terminal (rich progress),
and the app in a terminal; the terminals are detached tmux sessions of 100×30. Prints each
run's `train_images_per_s` from summary.json and the ratios of the means.

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


def in_terminal(command: str, session: str) -> None:
    """Start `command` in a detached tmux session of 100×30 (a real terminal)."""
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    command + "; sleep 600"], check=True)  # fmt: skip


def close_terminal(session: str) -> None:
    time.sleep(1)
    subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
    time.sleep(1)
    subprocess.run(["tmux", "kill-session", "-t", session], check=False,
                   stderr=subprocess.DEVNULL)  # fmt: skip


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
    results: dict[str, list[float]] = {"headless-log": [], "headless-tmux": [], "app-tmux": []}
    for i in range(args.rounds):
        name = f"headless-log-{i}"
        subprocess.run([*exe, *common, "--no-ui", "--name", name], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        results["headless-log"].append(summary(root, name, 5)["train_images_per_s"])
        for kind, extra in (("headless-tmux", ["--no-ui"]), ("app-tmux", [])):
            name = f"{kind}-{i}"
            in_terminal(" ".join([*exe, *common, *extra, "--name", name]), name)
            results[kind].append(summary(root, name, 3600)["train_images_per_s"])
            close_terminal(name)
    for kind, values in results.items():
        print(f"{kind:>13}: " + ", ".join(f"{v:,.0f}" for v in values) + " img/s")
    mean = {kind: sum(values) / len(values) for kind, values in results.items()}
    for base in ("headless-tmux", "headless-log"):
        ratio = mean["app-tmux"] / mean[base]
        print(f"app / {base} = {ratio:.3f} ({100 * (ratio - 1):+.1f}%)")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
