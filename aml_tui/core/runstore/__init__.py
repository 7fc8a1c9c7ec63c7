"""Run and sweep folders on disk; nothing here imports torch (listing runs stays fast).

- `runs`: one run folder: config.toml, metrics.jsonl, summary.json, and following them.
- `claim`: owner.json and the lock that makes one process at a time own a run or a sweep.
- `listing`: every run under a checkpoints folder, and each one's status.
- `recorder`: writes a run's events to its folder as they happen.
- `sweep_grid`: a sweep's grid of settings and seeds, planned and checked.
- `sweep_record`: a sweep's sweep.toml, read back as untrusted input.
- `sweeps`: sweep folders: creating, finding, resuming and listing them.
- `leaderboard`: runs grouped by settings, with mean ± std over seeds.
- `sweep_state`: what the Sweep screen shows, read from disk.
- `sweep_jobs`: a sweep's launcher (local or Slurm) and the jobs submitted for its runs.
- `run_curves`: a run's per-epoch curves, followed while it trains.
"""
