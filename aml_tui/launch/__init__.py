"""How one run of a sweep is started, followed and stopped: the launchers of `aml-tui sweep`.

- `commands`: the `train` command line of a run (a new one, or `--resume`), shared by all.
- `local`: each run a child process on this machine (`--launcher local`, the default).
- `slurm`: each run a Slurm job, submitted, followed and cancelled from the login node.
- `slurm_job`: the command inside each such job: starts or resumes the run, requeues on warning.
- `stop`: `aml-tui sweep stop`: the driver told to stop, or a driverless sweep's jobs cancelled.
- `filesystems`: whether a folder is on a filesystem only this machine sees (/tmp, tmpfs).

The sweep runner (sweep_runner.py) drives every launcher through the same few calls: `adopt`
(jobs a driver before it left running), `start`, `refresh` and, on each job, `poll` and
`send_signal`.
"""
