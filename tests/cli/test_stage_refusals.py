"""A stage that refuses its input in its own process (what compose cannot see: a file's content) ends
the command the way compose does: one `error:` line on stderr with the reason (file:line), exit
status 65 (`exit_codes.REFUSED`), no traceback; the run's log keeps the same line.
"""

from __future__ import annotations

import pytest
from cli_support import run_cli

from nemotron.common.exit_codes import REFUSED

pytestmark = pytest.mark.slow

CHAT_OK = '{"messages": [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "sat"}]}\n'
CASES = {
    "sft prep: a line that is not JSON": (
        "data/prep_sft",
        CHAT_OK + "{not json\n",
        "chats.jsonl:2: not a JSON object",
    ),
    "sft prep: an unknown role": (
        "data/prep_sft",
        CHAT_OK + '{"messages": [{"role": "wizard", "content": "x"}]}\n',
        "chats.jsonl:2",
    ),
    "dpo prep: a pair without its rejected answer": (
        "data/prep_dpo",
        '{"prompt": "the", "chosen": "cat"}\n',
        "chats.jsonl:1",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_stage_refusing_its_input_ends_in_one_error_line(name, tmp_path, word_tokenizer):
    recipe, content, expect = CASES[name]
    chats = tmp_path / "chats.jsonl"
    chats.write_text(content)
    result = run_cli(
        f"+recipe={recipe}",
        f"data.sources=[{chats}]",
        f"data.tokenizer_path={word_tokenizer}",
        f"paths.output_root={tmp_path / 'out'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        timeout=300,
    )
    said = result.stdout + result.stderr
    assert result.returncode == REFUSED, said[-3000:]
    assert "Traceback" not in said, said[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], result.stderr
    assert "refused its input; full log: " in lines[0]
    assert "error: " not in result.stdout  # said once, on stderr
    log = next((tmp_path / "out").rglob("train.log")).read_text()
    assert expect in log
