"""A real single-node Slurm cluster on 127.0.0.1 for the tests of `--launcher slurm`.

Debian's slurm-wlm packages (slurmctld, slurmd, slurm-client, slurm-wlm-basic-plugins and
libhwloc15), extracted with `dpkg -x` into one folder (`.ci/run` does it, and caches them):
SLURM_ENV names it, else the CI cache's `slurm` folder. Nothing is installed system-wide:
slurm.conf, the state, spool, pid and log files all live in the test's tmp folder, the
daemons run as the current user in the foreground (this process's children), on free ports,
with authentication off (auth/none) and no cgroups (proctrack/linuxproc, task/none), and the
node claims more cores than the machine has (config_overrides), so only `--jobs` limits how
many jobs run at once. At the end every job is cancelled and both daemons stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SLURM_ENV = "AML_TUI_SLURM"
"""The folder the packages were extracted into (holding usr/bin, usr/sbin, usr/lib)."""
REQUIRE_ENV = "AML_TUI_REQUIRE_SLURM"
"""CI sets it: a Slurm that cannot start fails the tests instead of skipping them."""
NODE_CPUS = 4
START_S = 60.0


def slurm_folder() -> Path:
    given = os.environ.get(SLURM_ENV)
    if given:
        return Path(given)
    cache = os.environ.get("AML_TUI_CI_CACHE", str(Path.home() / ".cache" / "aml-tui-ci"))
    return Path(cache) / "slurm"


def skip_or_fail(why: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"Slurm cannot run, and {REQUIRE_ENV}=1: {why}")
    pytest.skip(f"needs a real Slurm: {why}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(folder: Path, plugins: Path) -> str:
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    lines = {
        "ClusterName": f"amltest{os.getpid()}", "SlurmctldHost": "localhost(127.0.0.1)",
        "SlurmctldPort": free_port(), "SlurmdPort": free_port(), "SlurmUser": user,
        "SlurmdUser": user, "AuthType": "auth/none", "CredType": "cred/none",
        "PluginDir": plugins, "StateSaveLocation": folder / "state",
        "SlurmdSpoolDir": folder / "spool", "SlurmctldPidFile": folder / "slurmctld.pid",
        "SlurmdPidFile": folder / "slurmd.pid", "SlurmctldLogFile": folder / "slurmctld.log",
        "SlurmdLogFile": folder / "slurmd.log", "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none", "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none", "JobCompType": "jobcomp/none",
        "MpiDefault": "none", "SwitchType": "switch/none", "SchedulerType": "sched/builtin",
        "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_CPU",
        "SlurmdParameters": "config_overrides", "ReturnToService": 2, "MinJobAge": 3600,
        "KillWait": 30,
    }  # fmt: skip
    text = "".join(f"{key}={value}\n" for key, value in lines.items())
    return text + (
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} State=UNKNOWN\n"
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"
    )


@dataclass
class Cluster:
    """The running cluster: the environment its commands need, and a few of them."""

    env: dict[str, str]
    folder: Path

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)

    def jobs(self) -> list[tuple[str, str, str]]:
        """(job id, name, state) of every job the cluster knows, ended ones too."""
        done = self.run("squeue", "-h", "--states=all", "-o", "%i|%j|%T")
        assert done.returncode == 0, done.stderr
        return [tuple(line.split("|")) for line in done.stdout.split()]  # type: ignore[misc]

    def logs(self) -> str:
        return "".join(
            path.read_text(errors="replace")[-3000:] for path in self.folder.glob("*.log")
        )


def start_cluster(folder: Path) -> Iterator[Cluster]:
    """Start slurmctld and slurmd in `folder`, yield the cluster, then stop it all."""
    root = slurm_folder()
    lib = root / "usr" / "lib" / "x86_64-linux-gnu"
    daemons = [root / "usr" / "sbin" / name for name in ("slurmctld-wlm", "slurmd-wlm")]
    if not all(path.exists() for path in daemons):
        skip_or_fail(f"no extracted slurm-wlm packages in {root} (set {SLURM_ENV}; .ci/run "
                     "downloads them)")  # fmt: skip
    for name in ("state", "spool"):
        (folder / name).mkdir(parents=True)
    (folder / "slurm.conf").write_text(config_text(folder, lib / "slurm-wlm"))
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf"),
           "LD_LIBRARY_PATH": f"{lib / 'slurm-wlm'}:{lib}",
           "PATH": f"{root / 'usr' / 'bin'}:{os.environ['PATH']}"}  # fmt: skip
    cluster = Cluster(env, folder)
    stepd = root / "usr" / "sbin" / "slurmstepd-wlm"
    commands = [[str(daemons[0]), "-D", "-i"],
                [str(daemons[1]), "-D", "-N", "localhost", "-d", str(stepd)]]  # fmt: skip
    processes = []
    try:
        for command in commands:
            processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))  # fmt: skip
            time.sleep(0.5)
        wait_idle(cluster, processes)
        yield cluster
    finally:
        if shutil.which("scancel", path=env["PATH"]) and processes:
            cluster.run("scancel", f"--user={os.getuid()}")
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and any(
                state in ("RUNNING", "COMPLETING", "PENDING") for *_, state in cluster.jobs()
            ):
                time.sleep(0.5)
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_idle(cluster: Cluster, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        dead = [p for p in processes if p.poll() is not None]
        if dead:
            skip_or_fail(f"a Slurm daemon exited ({dead[0].args[0]}): {cluster.logs()}")
        state = cluster.run("sinfo", "-h", "-o", "%T").stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    skip_or_fail(f"the node did not become idle in {START_S:.0f} s: {cluster.logs()}")
