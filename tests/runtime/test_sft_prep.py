"""SFT data prep on crafted chat files: masks, report counts, bad input, determinism, resume.

Real tokenizers BPE and Jinja; no Megatron (prep does not import it), so these run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nemotron.runtime.prep import chat
from nemotron.runtime.prep import packing
from nemotron.runtime.prep import sft as sft_prep
from nemotron.runtime.prep.text import EOD_TOKEN
from nemotron.runtime.prep.tokens import train_bpe


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_bpe(["The cat sat on the mat. Hello there, how are you? Fine thanks."] * 20, 300,
              EOD_TOKEN, path)
    return path


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text):
    return {"role": "assistant", "content": text}


def _write(path: Path, records) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _spec(tmp_path, tokenizer, sources, **kw) -> sft_prep.SftPrepSpec:
    kw = {"seq_length": 64, "split": "1,0,0", "num_workers": 1, **kw}
    return sft_prep.SftPrepSpec(sources=[str(s) for s in sources], tokenizer_path=str(tokenizer),
                                packed_file=tmp_path / "out" / "sft.json", **kw)


CRAFTED = [
    {"messages": [{"role": "system", "content": "Be brief."}, _user("Hello there"),
                  _assistant("Fine thanks.")]},
    {"prompt": "how are you?", "completion": "The cat sat."},
    "",
    {"messages": [_user("no answer here")]},
    {"messages": [_user("the mat " * 40), _assistant("ok")]},  # too long: its answer is cut off
    {"messages": [_user("Hi"), _assistant("Hello " * 40)]},  # too long: truncated, still has loss
]


def test_mask_covers_assistant_text_and_end_of_turn_only(tokenizer):
    from tokenizers import Tokenizer

    renderer = chat.ChatRenderer(chat.DEFAULT_TEMPLATE, EOD_TOKEN)
    rendered = renderer.render([_user("Hello there"), _assistant("Fine thanks.")], "x:1")
    enc = Tokenizer.from_file(str(tokenizer)).encode(rendered.text)
    mask = chat.token_mask(enc.offsets, rendered.spans)
    masked = "".join(rendered.text[a:b] for (a, b), m in zip(enc.offsets, mask) if m)
    assert masked == "Fine thanks." + EOD_TOKEN


def test_report_counts_on_a_crafted_file(tmp_path, tokenizer, capsys):
    source = _write(tmp_path / "chats.jsonl", CRAFTED)
    report = sft_prep.prepare_sft(_spec(tmp_path, tokenizer, [source]))
    c = report["counts"]
    assert (c["read"], c["kept"], c["truncated"]) == (5, 3, 2)
    assert c["dropped"] == {"no_assistant_turn": 1, "too_long": 0, "no_loss_tokens": 1}
    out = tmp_path / "out"
    tokens, mask = np.load(out / "sft-train.tokens.npy"), np.load(out / "sft-train.mask.npy")
    lengths = np.load(out / "sft-train.lengths.npy")
    assert c["tokens"] == len(tokens) == lengths.sum() and max(lengths) == 65
    starts = np.concatenate([[0], np.cumsum(lengths)])
    assert c["loss_tokens"] == sum(int(mask[a + 1:b].sum()) for a, b in zip(starts, starts[1:]))
    assert report["loss_token_share"] == pytest.approx(c["loss_tokens"] / c["tokens"], abs=1e-6)
    assert json.loads((out / "report.json").read_text()) == report
    assert "conversations read" in capsys.readouterr().out

    dropped = sft_prep.prepare_sft(_spec(tmp_path / "drop", tokenizer, [source], overlong="drop"))
    assert dropped["counts"]["dropped"]["too_long"] == 2 and dropped["counts"]["kept"] == 2


@pytest.mark.parametrize("line, expected", [
    ("{not json", "chats.jsonl:2: not a JSON object"),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}),
     "chats.jsonl:2: messages[0] has role 'robot'"),
])
def test_bad_line_names_file_and_line(tmp_path, tokenizer, line, expected):
    source = _write(tmp_path / "chats.jsonl", [CRAFTED[0], line])
    with pytest.raises(chat.ChatDataError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        sft_prep.prepare_sft(_spec(tmp_path, tokenizer, [source]))


def test_template_without_generation_marks_is_refused_before_writing(tmp_path, tokenizer):
    source = _write(tmp_path / "chats.jsonl", CRAFTED[:2])
    template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    with pytest.raises(chat.ChatDataError, match="never marks assistant text"):
        sft_prep.prepare_sft(_spec(tmp_path, tokenizer, [source], chat_template=template))
    assert not (tmp_path / "out").exists()


def test_template_from_tokenizer_config_and_its_render_error_names_the_line(tmp_path, tokenizer):
    source = _write(tmp_path / "chats.jsonl", [CRAFTED[0], CRAFTED[1]])
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    (tok_dir / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    template = chat.DEFAULT_TEMPLATE + "{{ 1 // (messages | length - 2) }}"  # fails for 2 messages
    (tok_dir / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    spec = _spec(tmp_path, tok_dir / "tokenizer.json", [source])
    with pytest.raises(chat.ChatDataError, match=r"chats.jsonl:2: the chat template .*tokenizer_config"
                                                 r".*ZeroDivisionError"):
        sft_prep.prepare_sft(spec)


def _outputs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.suffix in (".npy", ".npz") or p.name in ("report.json", "sft.json")}


def _many(tmp_path, n=60):
    records = [{"messages": [_user(f"Hello {i}"), _assistant("Fine thanks. " * (1 + i % 5))]}
               for i in range(n)]
    return _write(tmp_path / "many.jsonl", records)


def test_output_is_deterministic_and_workers_do_not_change_it(tmp_path, tokenizer):
    source = _many(tmp_path)
    one = _spec(tmp_path / "a", tokenizer, [source], docs_per_shard=10, split="80,20,0")
    two = _spec(tmp_path / "b", tokenizer, [source], docs_per_shard=10, split="80,20,0",
                num_workers=2)
    sft_prep.prepare_sft(one)
    sft_prep.prepare_sft(two)
    assert _outputs(one.out_dir) == _outputs(two.out_dir)
    assert set(json.loads(one.packed_file.read_text())["splits"]) == {"train", "valid"}


def test_fewer_workers_than_asked_are_said_in_one_line(tmp_path, tokenizer):
    lines = []
    sft_prep.prepare_sft(_spec(tmp_path, tokenizer, [_many(tmp_path)], num_workers=2), log=lines.append)
    assert [line for line in lines if "workers (data.num_workers" in line] == [
        "sft prep: using 1 of 2 workers (data.num_workers=2): only 1 shard of up to "
        "data.docs_per_shard=100000 conversations left to encode, one worker each at most "
        "(a smaller data.docs_per_shard splits more)"]


def test_interrupted_prep_resumes_skipping_finished_shards(tmp_path, tokenizer):
    source = _many(tmp_path)
    clean = _spec(tmp_path / "clean", tokenizer, [source], docs_per_shard=10)
    sft_prep.prepare_sft(clean, log=lambda line: None)
    spec = _spec(tmp_path / "killed", tokenizer, [source], docs_per_shard=10)

    def crash_after_two_shards(line):
        if line.startswith("sft prep: [2/"):
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        sft_prep.prepare_sft(spec, log=crash_after_two_shards)
    assert not spec.packed_file.exists()
    lines = []
    sft_prep.prepare_sft(spec, log=lines.append)
    assert any("2 already done, encoding 4" in line for line in lines)
    assert _outputs(spec.out_dir) == _outputs(clean.out_dir)


def test_best_fit_decreasing_fills_bins_within_capacity_once_each():
    lengths = [7, 3, 5, 2, 8, 1, 4, 6, 2, 2]
    bins = packing.best_fit_decreasing(lengths, 10)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 10 for b in bins)
    assert len(bins) == 4 == -(-sum(lengths) // 10)  # 40 tokens in 4 full bins
    assert packing.efficiency(lengths, bins, 10) == 1.0
    assert bins == packing.best_fit_decreasing(lengths, 10)
