"""The training core: plain Python and PyTorch, no terminal code (a test checks it).

Three packages show its parts:

- `runstore`: run and sweep folders on disk, read and written without torch (so listing
  runs stays fast; an import contract checks it).
- `data`: datasets held in memory as uint8 tensors and the batch transforms that feed a model.
- `training`: the training loop and what it needs: devices, several GPUs, checkpoints,
  failures.

Beside them, the modules every part shares: `events` (what the trainer says), `experiments`
(the registry of recipes), `models` and `pretrained` (the networks and their weights),
`evaluation` and `metrics` (a finished run's results), `files` (atomic writes and safe
reads), `untrusted` (user-given paths and pickles), `selection` (which epoch is picked, on which
split), `timing` (throughput and time left) and `hardware` (GPU facts through NVML).
"""
