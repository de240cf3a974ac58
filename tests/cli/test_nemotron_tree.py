"""The `nemotron` command tree on real runs: jobs, logs, cancel, compare, steps, ui, completion, bad input.

One module fixture runs a real two-member local sweep (gpt/pretrain, 3 steps each, tracker=mlflow: two
run directories and the sqlite store, ~15-25 s here); every test reads it. Commands run in this process
(`nemotron.cookbook.cli.main`) except `ui`, a real MLflow server on a free loopback port stopped by PID.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_support import REPO, run_cli
from picture_support import shown

from nemotron.cookbook.cli import main as nemotron_main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """An outputs root with two finished local runs (a sweep over optim.lr) and the MLflow store."""
    base = tmp_path_factory.mktemp("tree")
    result = run_cli(
        "+recipe=gpt/pretrain",
        f"paths.output_root={base / 'outputs'}",
        f"data.cache_dir={base / 'data'}",
        "train.steps=3",
        "train.num_threads=1",
        "-m",
        "optim.lr=1e-3,3e-3",
        env={"MLFLOW_DISABLE_TELEMETRY": "true"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return base / "outputs"


def nemotron(*args: str):
    """(exit code, stdout, stderr) of `nemotron ARGS` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as done:
        nemotron_main(list(args))
    return done.value.code, out.getvalue(), err.getvalue()


def members(root: Path):
    return sorted(str(p.parent.relative_to(root)) for p in root.glob("gpt/pretrain/multirun_*/*/config.yaml"))


def test_jobs_lists_local_runs_with_state_steps_and_loss(root):
    code, out, _ = nemotron("jobs", "--root", str(root))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["RUN", "RECIPE", "STATE", "STEPS", "LOSS", "JOB"]
    assert sorted(r.split()[0] for r in rows) == members(root)
    for row in rows:
        name, recipe, state, steps, loss, job, run_dir = row.split()
        assert (recipe, state, steps, job) == ("gpt/pretrain", "FINISHED", "3", "-")
        assert float(loss) > 0 and Path(run_dir) == root / name


def test_logs_of_a_run_and_follow_of_an_ended_run(root):
    first = members(root)[0]
    code, out, _ = nemotron("logs", "--root", str(root), first)
    assert code == 0 and "step 3/3" in out and out.rstrip().splitlines()[-1].startswith("done |")
    code, out, err = nemotron("logs", "--root", str(root), "-f", first)  # ended: last lines, then its state
    assert code == 0 and out.rstrip().splitlines()[-1].startswith("done |")
    assert err.strip() == f"{first}: FINISHED (ended; nothing to follow)"


def test_an_unknown_run_or_command_is_one_line_with_the_closest_names(root):
    wrong = members(root)[0].replace("pretrain", "pretrian")
    code, out, err = nemotron("logs", "--root", str(root), wrong)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert "no such run or job id" in err and f"closest: {members(root)[0]}" in err
    code, _, err = nemotron("jbos")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unknown family (did you mean jobs?)" in err
    code, _, err = nemotron("steps", "lst")
    assert (
        code == 2
        and err.strip() == "nemotron steps: error: lst: unknown command (closest: list); available: list, show"
    )
    code, _, err = nemotron("cancel", "--root", str(root), members(root)[0])
    assert code == 2 and "not running (state FINISHED)" in err and len(err.strip().splitlines()) == 1


def test_compare_any_runs_prints_metrics_a_config_diff_and_one_figure(root, tmp_path):
    first, second = members(root)
    png = tmp_path / "both.png"
    code, out, _ = nemotron("compare", "--root", str(root), first, second, "--plot", str(png))
    assert code == 0, out
    assert f"{first}  gpt/pretrain  FINISHED  3" in out and f"{second}  gpt/pretrain  FINISHED  3" in out
    diff = out.split("config differences", 1)[1].splitlines()
    assert any(line.split()[:3] == ["optim.lr", "0.001", "0.003"] for line in diff), out
    panels = shown(png)  # one figure, a line per run in each panel
    assert panels["loss"] == [(first, 3), (second, 3)]
    assert [label for label, _ in panels["learning rate"]] == [first, second]


def test_steps_list_and_show_name_what_each_recipe_consumes_and_produces():
    code, out, _ = nemotron("steps", "list")
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith("`")}
    assert {"nano3/pretrain", "nano3/sft", "gpt/rl", "data/prep", "data/prep_sft"} <= set(rows)
    assert "base_model [checkpoint], sft_data [sft_data]" in rows["nano3/sft"]
    code, out, _ = nemotron("steps", "show", "nano3/sft")
    assert code == 0 and "produces:  sft_model [checkpoint]" in out and "pipelines: nano3.sft" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_serves_the_store_on_loopback_and_a_taken_port_is_one_line(root):
    port = free_port()
    cmd = [sys.executable, "-m", "nemotron.cookbook.cli", "ui", "--root", str(root), "--port", str(port)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )  # its own group: mlflow's server workers stop with it
    try:
        body = ""
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    body = answer.read().decode()
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                time.sleep(0.5)
        assert body.strip() == "OK"
        taken = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and not taken.stdout
        assert taken.stderr.strip() == (
            f"nemotron ui: error: port {port} on 127.0.0.1 is taken; pick another with `nemotron ui --port {port + 1}`"
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of the process this test started
        proc.wait(timeout=30)
        proc.stdout.close()


def test_completion_scripts_and_their_answers(root):
    code, script, _ = nemotron("completion", "bash")
    assert code == 0 and subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    code, zsh, _ = nemotron("completion", "zsh")
    assert code == 0 and "compdef _nemotron_complete nemotron" in zsh

    def words(line: str):
        code, out, _ = nemotron("completion", "--words", "bash", line)
        assert code == 0
        return out.splitlines()

    assert words("nemotron st") == ["steps "]
    assert words("nemotron nano3 pre") == ["pretrain "]
    assert words("nemotron nano3 pretrain -c ") == ["default ", "tiny "]
    assert words("nemotron steps show nano3/s") == ["nano3/sft "]
    assert words("nemotron pipe pipeline=na") == ["nano3 "]  # bash completes the part after '='
    assert words("nemotron checkpoint export-hf --ve") == ["--verify "]
    assert [w.strip() for w in words(f"nemotron logs --root {root} gpt/")] == members(root)
    bash = f'{script}\nCOMP_LINE="nemotron jo"; COMP_POINT=${{#COMP_LINE}}; _nemotron_complete; echo "[$COMPREPLY]"'
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert subprocess.run(["bash", "-c", bash], capture_output=True, text=True, env=env).stdout == "[jobs ]\n"


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed on this machine")
def test_zsh_completion_script_completes_in_zsh():
    _, script, _ = nemotron("completion", "zsh")
    calls = (  # compinit as in ~/.zshrc; compadd (zsh's builtin) prints what it is given
        "autoload -U compinit && compinit -u -D\n" + script + '\ncompadd() { shift; print -l -- "$@"; }\n'
        "words=(nemotron nano3 pre); CURRENT=3; _nemotron_complete\n"
        'words=(nemotron nano3 pretrain -c ""); CURRENT=5; _nemotron_complete\n'
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["zsh", "-c", calls], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["pretrain", "default", "tiny"], done.stderr


def test_recipe_without_plus_runs_as_with_it(tmp_path):
    result = run_cli("recipe=gpt/pretrain", f"paths.output_root={tmp_path}", "dry_run=true")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recipes/gpt/pretrain/train.py" in result.stdout
