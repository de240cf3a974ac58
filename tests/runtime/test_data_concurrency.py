"""Jobs sharing one data cache prepare the tiny data one at a time (a file lock), and all get it."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREPARE = """
import sys
from omegaconf import OmegaConf
from nemotron.config.schema import DataConfig
from nemotron.runtime.data.gpt import prepare_tiny, tiny_blend_path
cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {"cache_dir": sys.argv[1], "num_documents": 400})
if sys.argv[2] == "where":
    print(tiny_blend_path(cfg)); sys.exit()
print("ready", flush=True)
print(prepare_tiny(cfg), flush=True)
"""


def prepare(cache: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PREPARE, str(cache), mode], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_preparation_waits_for_the_job_holding_the_cache_lock(tmp_path):
    where = prepare(tmp_path, "where")
    blend = Path(where.communicate(timeout=60)[0].strip())
    blend.parent.mkdir(parents=True, exist_ok=True)
    with open(blend.parent / ".prepare.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another job preparing this cache would
        proc = prepare(tmp_path, "prepare")
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(3)  # preparing 400 documents takes well under a second once imported
        assert proc.poll() is None and not blend.exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert Path(out.strip()) == blend and blend.is_file()
