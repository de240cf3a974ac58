"""A throwaway Slurm cluster on this machine, for the Slurm tests: install, start, check, stop.

    python tests/slurm/cluster.py install                  # apt: munge, slurm, slurmdbd, mariadb (root)
    python tests/slurm/cluster.py up     --root /tmp/nemotron-slurm
    python tests/slurm/cluster.py status --root /tmp/nemotron-slurm
    python tests/slurm/cluster.py down   --root /tmp/nemotron-slurm

`up` installs missing packages, then starts munged, MariaDB, slurmdbd, slurmctld and one slurmd per
"node" (n1..nN on 127.0.0.11.., each with fake GPUs through GRES), all in the foreground under this
module's control: every daemon's PID is recorded in `<root>/run/<name>.pid`, and `down` stops exactly
those PIDs (SIGTERM, wait, SIGKILL). Config, state, logs and PIDs live under `--root`; the one thing
written outside it is a marked block of node names in /etc/hosts (removed by `down`). Clients find the
cluster through `SLURM_CONF=<root>/etc/slurm.conf` (see `ClusterInfo.env`). `up` reuses a healthy
running cluster. Needs root. Facts behind the choices: README.md next to this file.

From Python: `info = start(root)`, `os.environ.update(info.env)`, ..., `stop(root)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

# siblings: this folder is on sys.path (run as a script, or imported as conftest.py does)
from cluster_layout import ClusterInfo, Layout
from daemon_pids import is_ours, record_pid, recorded, stop_pid

PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client", "slurmdbd", "mariadb-server")
MARKER = ".nemotron-slurm-test-cluster"  # in a root we created; we wipe nothing in a root without it
HOSTS_BEGIN, HOSTS_END = "# BEGIN nemotron-slurm-test ", "# END nemotron-slurm-test "
# stop order: compute nodes first, the database last
DAEMON_ORDER = ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged")


def log(msg: str) -> None:
    print(f"[slurm-cluster {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*cmd: str, env: dict | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command, capture its output; on failure raise with the output in the message."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


# ---------------------------------------------------------------- packages

def missing_packages() -> list[str]:
    def installed(pkg: str) -> bool:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        return out.stdout.strip() == "install ok installed"
    return [p for p in PACKAGES if not installed(p)]


def install() -> float:
    """apt-get install the missing packages without letting their init scripts start daemons; seconds taken."""
    missing = missing_packages()
    if not missing:
        return 0.0
    if os.geteuid() != 0:
        raise SystemExit(f"slurm test cluster: packages missing ({' '.join(missing)}) and not root to install them")
    t0 = time.monotonic()
    log(f"installing {' '.join(missing)}")
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:  # exit 101 = "do not start services": we start our own daemons
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        sh("apt-get", "update", "-qq", env=env, timeout=300)
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env, timeout=900)
    finally:
        if created_policy:
            policy.unlink()
    secs = time.monotonic() - t0
    log(f"packages installed in {secs:.1f} s")
    return secs


# ---------------------------------------------------------------- config files

def render(template: str, lay: Layout, **extra) -> str:
    """Fill a *.conf.in file next to this module with the layout's paths and ports."""
    fields = {**dataclasses.asdict(lay), **{d: getattr(lay, d) for d in Layout.DIRS},
              "munge_socket": lay.munge_socket, **extra}
    return (Path(__file__).parent / template).read_text().format(**fields)


def make_fake_gpu(path: Path) -> None:
    """slurmd wants a character device per GPU (`Count=` alone drains the node): alias /dev/null (1, 3)."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:  # no CAP_MKNOD: GPUs are still scheduled, but jobs get no CUDA_VISIBLE_DEVICES
        path.touch()
        log(f"WARNING: cannot mknod {path}; jobs will see an empty CUDA_VISIBLE_DEVICES")


def write_configs(lay: Layout) -> None:
    host = socket.gethostname()
    nodes = []
    for i in range(1, lay.num_nodes + 1):
        name, addr, port = lay.node(i)
        gres = f" Gres=gpu:{lay.gpus_per_node}" if lay.gpus_per_node else ""
        nodes.append(f"NodeName={name} NodeHostname={host} NodeAddr={addr} Port={port} "
                     f"CPUs={lay.cpus_per_node} RealMemory={lay.mem_mb_per_node}{gres} State=UNKNOWN")
    lay.slurm_conf.write_text(render("slurm.conf.in", lay, host=host, nodes="\n".join(nodes)))
    gres = ["AutoDetect=off"]
    for name in lay.node_names if lay.gpus_per_node else []:
        gpu_dir = lay.fakegpu / name
        gpu_dir.mkdir(parents=True, exist_ok=True)
        for g in range(lay.gpus_per_node):
            make_fake_gpu(gpu_dir / f"nvidia{g}")
        gres.append(f"NodeName={name} Name=gpu File={gpu_dir}/nvidia[0-{lay.gpus_per_node - 1}]")
    (lay.etc / "gres.conf").write_text("\n".join(gres) + "\n")
    dbd = lay.etc / "slurmdbd.conf"
    dbd.write_text(render("slurmdbd.conf.in", lay))
    dbd.chmod(0o600)  # slurmdbd refuses a world-readable config with a password


def write_hosts(lay: Layout, add: bool) -> None:
    """Add (or drop) this root's node names in /etc/hosts, rewritten in place (it may be a bind mount)."""
    begin, end = HOSTS_BEGIN + str(lay.root), HOSTS_END + str(lay.root)
    kept, skip = [], False
    for line in Path("/etc/hosts").read_text().splitlines():
        if line == begin:
            skip = True
        elif line == end:
            skip = False
        elif not skip:
            kept.append(line)
    if add:
        kept += [begin, *(f"{lay.node(i)[1]} {lay.node(i)[0]}" for i in range(1, lay.num_nodes + 1)), end]
    with open("/etc/hosts", "r+") as f:
        f.write("\n".join(kept) + "\n")
        f.truncate()


# ---------------------------------------------------------------- starting daemons

def spawn(lay: Layout, name: str, cmd: list[str], user_env: dict | None = None) -> int:
    """Start one daemon in the foreground (its own session, output to log/<name>.out) and record its PID."""
    out = open(lay.log / f"{name}.out", "ab")
    env = {**os.environ, "SLURM_CONF": str(lay.slurm_conf), **(user_env or {})}
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)
    out.close()
    record_pid(lay, name, proc.pid)
    return proc.pid


def wait_for(what: str, check, lay: Layout, name: str, timeout_s: float = 60.0) -> None:
    """Poll check() until true; fail with the daemon's log tail if it died or the time ran out."""
    deadline = time.monotonic() + timeout_s
    pid, start = recorded(lay)[name]
    while time.monotonic() < deadline:
        if check():
            return
        if not is_ours(pid, start):
            break
        time.sleep(0.1)
    logs = sorted(lay.log.glob(f"{name.split('-')[0]}*"))
    tail = "\n".join(f"--- {p}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]) for p in logs)
    raise RuntimeError(f"slurm test cluster: {what} did not come up (pid {pid}); logs:\n{tail}")


def ok(*cmd: str, lay: Layout) -> bool:
    env = {**os.environ, "SLURM_CONF": str(lay.slurm_conf)}
    try:
        return subprocess.run(cmd, capture_output=True, env=env, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start_munge(lay: Layout) -> None:
    key = lay.munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    spawn(lay, "munged", ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={lay.munge_socket}",
                          f"--pid-file={lay.munge}/munged.pidfile", f"--log-file={lay.log}/munged.log",
                          f"--seed-file={lay.munge}/munged.seed"])
    wait_for("munged", lambda: lay.munge_socket.exists() and ok("munge", "-n", f"--socket={lay.munge_socket}", lay=lay),
             lay, "munged")


def start_mariadb(lay: Layout) -> None:
    data = lay.db / "data"
    sh("mariadb-install-db", "--user=root", f"--datadir={data}", "--auth-root-authentication-method=socket",
       "--skip-test-db", timeout=120)
    spawn(lay, "mariadbd", ["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
                            f"--socket={lay.db_socket}", f"--pid-file={lay.db}/mariadbd.pidfile",
                            "--bind-address=127.0.0.1", f"--port={lay.db_port}", "--skip-name-resolve",
                            f"--log-error={lay.log}/mariadb.err", "--innodb-buffer-pool-size=64M",
                            "--innodb-lock-wait-timeout=900"])
    sql = ("CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';"
           "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;")
    wait_for("mariadbd", lambda: ok("mariadb", "--no-defaults", "-S", str(lay.db_socket), "-e", sql, lay=lay),
             lay, "mariadbd")


def start_slurm(lay: Layout) -> None:
    spawn(lay, "slurmdbd", ["slurmdbd", "-D"])
    wait_for("slurmdbd", lambda: ok("sacctmgr", "-n", "list", "cluster", lay=lay), lay, "slurmdbd")
    if not ok("sacctmgr", "-i", "add", "cluster", lay.cluster_name, lay=lay):
        raise RuntimeError(f"sacctmgr could not register cluster {lay.cluster_name}; see {lay.log}/slurmdbd.log")
    spawn(lay, "slurmctld", ["slurmctld", "-D", "-i"])
    wait_for("slurmctld", lambda: ok("scontrol", "ping", lay=lay), lay, "slurmctld")
    for name in lay.node_names:
        (lay.spool / name).mkdir(parents=True, exist_ok=True)
        spawn(lay, f"slurmd-{name}", ["slurmd", "-D", "-N", name])
    wait_for(f"{lay.num_nodes} idle nodes", lambda: nodes_idle(lay), lay, "slurmctld")


def nodes_idle(lay: Layout) -> bool:
    """All nodes answer and none is down or drained (idle, mixed or allocated)."""
    env = {**os.environ, "SLURM_CONF": str(lay.slurm_conf)}
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, env=env, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    states = dict(line.split() for line in out.stdout.splitlines() if line.strip())
    return out.returncode == 0 and set(states) == set(lay.node_names) and all(
        s.rstrip("*") in ("idle", "mix", "alloc") for s in states.values())


def stop_daemon(root: str | os.PathLike, name: str) -> str:
    """Stop one daemon of a running cluster by the PID recorded for it (tests: slurmdbd going away)."""
    lay = Layout(Path(root).resolve())
    pid, start = recorded(lay)[name]
    return stop_pid(name, pid, start)


def restart_slurmdbd(root: str | os.PathLike) -> None:
    """Start slurmdbd again after stop_daemon(root, "slurmdbd"); returns once sacctmgr answers."""
    lay = Layout(Path(root).resolve())
    spawn(lay, "slurmdbd", ["slurmdbd", "-D"])
    wait_for("slurmdbd", lambda: ok("sacctmgr", "-n", "list", "cluster", lay=lay), lay, "slurmdbd")


# ---------------------------------------------------------------- up / down / status

def healthy(lay: Layout) -> bool:
    """Every recorded daemon is alive and the cluster answers sinfo and sacct."""
    daemons = recorded(lay)
    expected = {"munged", "mariadbd", "slurmdbd", "slurmctld", *(f"slurmd-{n}" for n in lay.node_names)}
    return (set(daemons) == expected and all(is_ours(*v) for v in daemons.values())
            and nodes_idle(lay) and ok("sacct", "-n", "-X", "-j", "1", lay=lay))


def load_info(root: Path) -> ClusterInfo | None:
    path = root / "cluster.json"
    return ClusterInfo(**json.loads(path.read_text())) if path.exists() else None


def check_root(root: Path) -> None:
    """Refuse a non-empty directory this module did not create: we wipe it and kill the PIDs it records."""
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise SystemExit(f"slurm test cluster: {root} is not empty and not a cluster root ({MARKER} missing); "
                         "choose an empty or new directory")


def prepare_root(root: Path) -> None:
    """Empty the cluster root (keeping its marker) for a fresh start."""
    check_root(root)
    root.mkdir(parents=True, exist_ok=True)
    for child in root.iterdir():
        if child.name != MARKER:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    (root / MARKER).touch()


def start(root: str | os.PathLike, num_nodes: int = 2, gpus_per_node: int = 8) -> ClusterInfo:
    """Start the cluster under root (installing packages if needed), or reuse a healthy one there."""
    root = Path(root).resolve()
    lay = Layout(root, num_nodes=num_nodes, gpus_per_node=gpus_per_node)
    info = load_info(root)
    if info and len(info.nodes) == num_nodes and info.gpus_per_node == gpus_per_node and healthy(lay):
        log(f"reusing the healthy cluster under {root}")
        return info
    if os.geteuid() != 0:
        raise SystemExit("slurm test cluster: must run as root (daemons run as root; /etc/hosts gets node names)")
    check_root(root)
    install()
    stop(root, quiet=True)
    t0 = time.monotonic()
    prepare_root(root)
    for d in Layout.DIRS:
        getattr(lay, d).mkdir(mode=0o700)
    write_configs(lay)
    write_hosts(lay, add=True)
    try:
        start_munge(lay)
        start_mariadb(lay)
        start_slurm(lay)
    except BaseException:
        stop(root, quiet=True)
        raise
    info = ClusterInfo(root=str(root), slurm_conf=str(lay.slurm_conf), cluster_name=lay.cluster_name,
                       partition=lay.partition, nodes=lay.node_names,
                       node_addrs=[lay.node(i)[1] for i in range(1, num_nodes + 1)],
                       cpus_per_node=lay.cpus_per_node, mem_mb_per_node=lay.mem_mb_per_node,
                       gpus_per_node=gpus_per_node, pids={k: v[0] for k, v in recorded(lay).items()})
    (root / "cluster.json").write_text(json.dumps(dataclasses.asdict(info), indent=1) + "\n")
    log(f"up in {time.monotonic() - t0:.1f} s: partition {lay.partition}, nodes {','.join(lay.node_names)}, "
        f"{gpus_per_node} fake GPUs each; export SLURM_CONF={lay.slurm_conf}")
    return info


def cancel_jobs(lay: Layout, wait: bool) -> None:
    """Cancel queued and running jobs so their slurmstepd's end before the daemons go."""
    env = {**os.environ, "SLURM_CONF": str(lay.slurm_conf)}
    try:
        ids = subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True, env=env, timeout=10).stdout.split()
        if not ids:
            return
        subprocess.run(["scancel", *ids], capture_output=True, env=env, timeout=10)
        for _ in range(40 if wait else 0):
            if not subprocess.run(["squeue", "-h", "-o", "%A"], capture_output=True, text=True, env=env,
                                  timeout=10).stdout.split():
                return
            time.sleep(0.25)
    except (OSError, subprocess.TimeoutExpired):
        pass


def stop(root: str | os.PathLike, quiet: bool = False) -> None:
    """Stop exactly the daemons recorded under root (SIGTERM, wait, SIGKILL); drop the /etc/hosts block."""
    root = Path(root).resolve()
    check_root(root)
    lay = Layout(root)
    daemons = recorded(lay)
    if daemons.get("slurmctld") and is_ours(*daemons["slurmctld"]):
        # a dead slurmd cannot confirm its jobs' end: then cancel without waiting
        cancel_jobs(lay, wait=all(is_ours(*v) for k, v in daemons.items() if k.startswith("slurmd-")))
    order = sorted(daemons, key=lambda n: DAEMON_ORDER.index(n.split("-")[0]))
    for name in order:
        msg = stop_pid(name, *daemons[name])
        (lay.run / f"{name}.pid").unlink()
        quiet or log(msg)
    if Path("/etc/hosts").exists() and os.geteuid() == 0:
        write_hosts(lay, add=False)
    (root / "cluster.json").unlink(missing_ok=True)


def status(root: str | os.PathLike) -> int:
    """Print each recorded daemon and whether the cluster is healthy; 0 if it is."""
    root = Path(root).resolve()
    info = load_info(root)
    lay = Layout(root, num_nodes=len(info.nodes), gpus_per_node=info.gpus_per_node) if info else Layout(root)
    for name, (pid, start) in recorded(lay).items():
        print(f"{name:16} pid {pid:<8} {'running' if is_ours(pid, start) else 'GONE'}")
    good = healthy(lay)
    print(f"cluster under {root}: {'healthy' if good else 'NOT healthy'}; SLURM_CONF={lay.slurm_conf}")
    return 0 if good else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("install", "up", "down", "status"))
    parser.add_argument("--root", default="/tmp/nemotron-slurm", help="directory for all config, state, logs, PIDs")
    parser.add_argument("--num-nodes", type=int, default=2, help="slurmd 'nodes' n1..nN on 127.0.0.11..")
    parser.add_argument("--gpus-per-node", type=int, default=8, help="fake GPUs per node through GRES")
    args = parser.parse_args(argv)
    if args.command == "install":
        install()
    elif args.command == "up":
        start(args.root, num_nodes=args.num_nodes, gpus_per_node=args.gpus_per_node)
    elif args.command == "down":
        stop(args.root)
    else:
        return status(args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
