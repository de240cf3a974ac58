"""A Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json with its chat template)
works as `data.tokenizer_path`: the config check, pretrain prep (copies both files), SFT prep's
template lookup and the training-side tokenizer all take it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"


@pytest.fixture
def hf_tokenizer(tmp_path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<|endoftext|>"])
    tok.train_from_iterator(["hello world", "the cat sat on the mat"] * 50, trainer)
    path = tmp_path / "tokenizer"
    path.mkdir()
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE, "eos_token": "<|endoftext|>"}))
    return path


def test_config_check_and_size_accept_a_tokenizer_directory(hf_tokenizer, tmp_path):
    from nemotron.common.tokenizer_files import tokenizer_tokens
    from nemotron.config import inputs

    cfg = OmegaConf.create({"data": {"tokenizer_path": str(hf_tokenizer), "blend_file": None}})
    assert inputs.tokenizer_exists(cfg) is None
    from tokenizers import Tokenizer

    assert tokenizer_tokens(cfg) == Tokenizer.from_file(str(hf_tokenizer / "tokenizer.json")).get_vocab_size()
    cfg.data.tokenizer_path = str(tmp_path / "missing")
    assert "Hugging Face tokenizer directory" in inputs.tokenizer_exists(cfg)


def test_training_tokenizer_and_sft_template_come_from_the_directory(hf_tokenizer):
    from nemotron.common.tokenizer_files import tokenizer_json
    from nemotron.runtime.data.gpt import TokenizerAdapter
    from nemotron.runtime.prep import chat

    adapter = TokenizerAdapter(str(hf_tokenizer))
    assert adapter.path == str(hf_tokenizer / "tokenizer.json") and adapter.eod == 1
    template, origin = chat.template_source(None, tokenizer_json(hf_tokenizer))
    assert template == TEMPLATE and origin == str(hf_tokenizer / "tokenizer_config.json")


def test_pretrain_prep_copies_tokenizer_and_its_chat_template(hf_tokenizer, tmp_path):
    from nemotron.runtime.prep import text as prep

    spec = prep.PrepSpec(sources=[], blend_file=tmp_path / "out" / "blend.json", tokenizer_path=str(hf_tokenizer))
    spec.out_dir.mkdir(parents=True)
    target = prep.ensure_tokenizer(spec, [], print)
    assert target.read_bytes() == (hf_tokenizer / "tokenizer.json").read_bytes()
    assert json.loads((target.parent / "tokenizer_config.json").read_text())["chat_template"] == TEMPLATE
