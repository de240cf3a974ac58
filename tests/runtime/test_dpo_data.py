"""DPO data: preference lines in TRL's formats, answer-only masks rendered with the SFT chat template,
prep counts and refusals naming file:line, the embedded synthetic pairs, and a pair as a micro-batch.
No Megatron: a BPE tokenizer trained here on a few lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nemotron.runtime.data import dpo as dpo_data
from nemotron.runtime.prep import chat
from nemotron.runtime.prep import preference as preference_prep
from nemotron.runtime.prep import text as prep
from nemotron.runtime.prep import tokens as prep_tokens
from nemotron.runtime.prep.pairs import parse_pair
from nemotron.runtime.prep.sft import SftPrepSpec

EOD = prep.EOD_TOKEN


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dpo_tok") / "tokenizer.json"
    docs = [json.dumps(p) for p in dpo_data.generate_pairs(200, 1)] + ["<|user|> <|assistant|>"]
    prep_tokens.train_bpe(docs, 400, EOD, path)
    return path


def _spec(tmp_path: Path, tokenizer_path: Path, sources, **kw) -> SftPrepSpec:
    return SftPrepSpec(
        sources=[str(s) for s in sources],
        packed_file=tmp_path / "out" / "dpo.json",
        tokenizer_path=str(tokenizer_path),
        seq_length=kw.pop("seq_length", 64),
        split=kw.pop("split", "100,0,0"),
        **kw,
    )


def _write(path: Path, records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_explicit_and_implicit_prompts_give_the_same_pair():
    user = {"role": "user", "content": "2+2?"}
    explicit = parse_pair(json.dumps({"prompt": "2+2?", "chosen": "4", "rejected": "5"}), "f:1")
    implicit = parse_pair(
        json.dumps(
            {
                "chosen": [user, {"role": "assistant", "content": "4"}],
                "rejected": [user, {"role": "assistant", "content": "5"}],
            }
        ),
        "f:2",
    )
    assert explicit == implicit
    assert explicit.conversation("rejected") == [user, {"role": "assistant", "content": "5"}]
    assert parse_pair("  \n", "f:3") is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"prompt": "a", "chosen": "b"}', "f.jsonl:7: a preference pair needs `chosen` and `rejected`"),
        ('{"prompt": "a", "chosen": 3, "rejected": "c"}', "f.jsonl:7: `chosen` is a int, expected a string"),
        (
            '{"prompt": "a", "chosen": [{"role": "user", "content": "b"}], "rejected": "c"}',
            "f.jsonl:7: `chosen` must end with an assistant message (roles: ['user'])",
        ),
        (
            '{"chosen": [{"role": "assistant", "content": "b"}], "rejected": [{"role": "assistant", "content": "c"}]}',
            "f.jsonl:7: no `prompt`, and `chosen` and `rejected` share no leading",
        ),
        (
            '{"prompt": [{"role": "robot", "content": "x"}], "chosen": "b", "rejected": "c"}',
            "f.jsonl:7: `prompt`: messages[0] has role 'robot'",
        ),
        ("[1, 2]", "f.jsonl:7: a preference pair needs `chosen` and `rejected` (and usually `prompt`); found list"),
    ],
)
def test_a_bad_line_is_refused_naming_file_line_and_key(line, expected):
    with pytest.raises(chat.ChatDataError) as err:
        parse_pair(line, "f.jsonl:7")
    assert str(err.value).startswith(expected)


def _decoded_answer(tok, ids: np.ndarray, mask: np.ndarray) -> str:
    return tok.decode([int(i) for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)


def test_masks_cover_the_answer_only_not_earlier_assistant_turns(tmp_path, tokenizer_path):
    from tokenizers import Tokenizer

    prompt = [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "Now the first word of: the cow ran."},
    ]
    source = _write(
        tmp_path / "p.jsonl",
        [{"prompt": prompt, "chosen": "The first word is the.", "rejected": "The first word is cow."}],
    )
    spec = _spec(tmp_path, tokenizer_path, [source], seq_length=256)
    report = preference_prep.prepare_dpo(spec, log=lambda s: None)
    assert report["counts"]["kept"] == 1 and report["counts"]["truncated"] == 0
    ds = dpo_data.PreferenceDataset(tmp_path / "out" / "dpo.json", "train", 0, seed=1)
    tok = Tokenizer.from_file(str(tokenizer_path))
    chosen, rejected = ds.sample(0), ds.sample(1)
    assert _decoded_answer(tok, *chosen) == f"The first word is the.{EOD}"
    assert _decoded_answer(tok, *rejected) == f"The first word is cow.{EOD}"
    assert "hi" in tok.decode(chosen[0].tolist())  # the earlier turn is there, outside the mask
    manifest = json.loads((tmp_path / "out" / "dpo.json").read_text())
    assert manifest["format"] == preference_prep.FORMAT and manifest["seq_length"] == 256


def test_overlong_pairs_are_truncated_or_dropped_and_counted(tmp_path, tokenizer_path):
    long = " ".join(["the cow ran to the barn"] * 30)
    source = _write(
        tmp_path / "p.jsonl",
        [
            {"prompt": "Repeat: the cow", "chosen": long, "rejected": "no"},
            {"prompt": long, "chosen": "yes", "rejected": "no"},  # the answer falls past the cut
            {"prompt": "same?", "chosen": "same", "rejected": "same"},
            "",
        ],
    )
    truncated = preference_prep.prepare_dpo(_spec(tmp_path, tokenizer_path, [source]), log=lambda s: None)
    c = truncated["counts"]
    assert (c["read"], c["kept"], c["truncated"], c["identical"]) == (3, 2, 1, 1)
    assert c["dropped"] == {"too_long": 0, "no_answer_tokens": 1}
    ds = dpo_data.PreferenceDataset(tmp_path / "out" / "dpo.json", "train", 0, seed=1)
    assert max(len(ds.sample(k)[0]) for k in range(4)) == 65
    dropped = preference_prep.prepare_dpo(
        _spec(tmp_path, tokenizer_path, [source], overlong="drop"), log=lambda s: None
    )["counts"]
    assert (dropped["kept"], dropped["dropped"]["too_long"]) == (1, 2)


def test_nothing_kept_or_a_bad_line_is_one_error_naming_the_line(tmp_path, tokenizer_path):
    source = _write(tmp_path / "p.jsonl", ['{"prompt": "a", "chosen": "b", "rejected": "c"}', "{oops"])
    with pytest.raises(chat.ChatDataError, match=rf"^{source}:2: not a JSON object"):
        preference_prep.prepare_dpo(_spec(tmp_path, tokenizer_path, [source]), log=lambda s: None)
    assert not (tmp_path / "out" / "dpo.json").exists()
    text = tmp_path / "p.txt"
    text.write_text("x\n")
    with pytest.raises(ValueError, match="DPO prep reads preference records"):
        preference_prep.prepare_dpo(_spec(tmp_path, tokenizer_path, [text]), log=lambda s: None)


def test_synthetic_pairs_are_seeded_and_chosen_differs_from_rejected():
    pairs = dpo_data.generate_pairs(300, 5)
    assert pairs == dpo_data.generate_pairs(300, 5) and pairs != dpo_data.generate_pairs(300, 6)
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    kinds = {p["prompt"].split(":")[0].split("?")[0] for p in pairs}
    assert len(kinds) == 4  # SFT's four tiny tasks


def test_a_pair_item_is_two_padded_rows_chosen_first(tmp_path, tokenizer_path):
    source = _write(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "yes yes", "rejected": "no"}])
    preference_prep.prepare_dpo(_spec(tmp_path, tokenizer_path, [source]), log=lambda s: None)
    ds = dpo_data.PreferenceDataset(tmp_path / "out" / "dpo.json", "train", 7, seed=1)
    item = ds[0]
    assert item["tokens"].shape == (2, 64) and item["attention_mask"].shape == (2, 1, 64, 64)
    for side in (0, 1):
        ids, mask = ds.sample(side)
        n = len(ids) - 1
        assert item["labels"][side, :n].tolist() == ids[1:].tolist()
        assert item["loss_mask"][side].sum() == mask[1:].sum() > 0
        assert (item["tokens"][side, n:] == 7).all()  # padded with the EOD id


def test_lineage_names_dpo_data_by_the_manifest_format_prep_writes():
    from nemotron.tracking import lineage

    assert lineage.DPO_FORMAT == preference_prep.FORMAT
