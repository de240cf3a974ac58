"""DPO training data: the embedded synthetic preference pairs, and pairs as Megatron micro-batches.

`resolve_dpo(cfg)` finds the manifest `data.packed_file` names (written by `+recipe=data/prep_dpo`,
nemotron/runtime/prep/preference.py), or, with `data.generate_tiny=true` (data=dpo_tiny), writes
seeded synthetic pairs under `data.cache_dir` and prepares them in this process with the tokenizer
of the embedded pretraining data (data=tiny), as SFT's tiny chats are: the prompts are SFT's tasks
(repeat / topic / first word / word count), the chosen answer is right and the rejected one wrong.

A `PreferenceDataset` item is one pair: every field of an SFT item (`sft_data.pack_samples`, one
sample padded to `model.seq_length`) with a leading dimension of 2, chosen first.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from nemotron.common.atomic_files import write_atomic
from nemotron.runtime.data import gpt as data
from nemotron.runtime.data import sft as sft_data
from nemotron.runtime.prep import preference as preference_prep
from nemotron.runtime.prep import sft as sft_prep

DPO_CORPUS_VERSION = 1
"""Bump when the pair generator changes: the cache folder changes with it."""

# ---- the embedded synthetic pairs ----------------------------------------------------------------


def _other(rng: random.Random, choices: List[str], right: str) -> str:
    return rng.choice([c for c in choices if c != right] or [right + "s"])


def _pair(rng: random.Random, grammar: Any, topic: str) -> Tuple[str, str, str]:
    """(question, right answer, wrong answer) for one of SFT's tiny tasks."""
    sentence = grammar.sentence()
    other = next((s for s in (grammar.sentence() for _ in range(8)) if s != sentence), sentence + "!")
    words = sentence.rstrip(".").split()
    roll = rng.random()
    if roll < 0.35:
        return f"Repeat this sentence: {sentence}", sentence, other
    if roll < 0.6:
        wrong = _other(rng, sorted(data.TOPICS), topic)
        return f"What is this sentence about? {sentence}", f"It is about the {topic}.", f"It is about the {wrong}."
    if roll < 0.8:
        wrong = _other(rng, words[1:] + other.rstrip(".").split(), words[0])
        return f"What is the first word of: {sentence}", f"The first word is {words[0]}.", f"The first word is {wrong}."
    wrong = max(1, len(words) + rng.choice([-2, -1, 1, 2]))
    return f"How many words are in: {sentence}", f"There are {len(words)} words.", f"There are {wrong} words."


def generate_pairs(num: int, seed: int) -> List[Dict[str, str]]:
    """`num` deterministic preference pairs (TRL's explicit-prompt format)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(num):
        topic = rng.choice(sorted(data.TOPICS))
        question, right, wrong = _pair(rng, data.Grammar(rng, topic), topic)
        pairs.append({"prompt": question, "chosen": right, "rejected": wrong})
    return pairs


def tiny_manifest_path(cfg: Any) -> Path:
    """The manifest of the generated pairs for `cfg` (corpus and samples beside it)."""
    d = cfg.data
    key = (
        f"v{DPO_CORPUS_VERSION}-n{d.num_documents}-t{d.tokenizer_vocab_size}-s{d.seed}"
        f"-l{cfg.model.seq_length}-{sft_data.overlong_mode(d)}"
    )
    return Path(d.cache_dir) / f"dpo-tiny-{key}" / "dpo.json"


def _generate_tiny(cfg: Any) -> None:
    d, path = cfg.data, tiny_manifest_path(cfg)
    blend = data.prepare_tiny(sft_data.pretrain_tiny(d))
    corpus = path.parent / "pairs.jsonl"
    if not corpus.is_file():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(p) + "\n" for p in generate_pairs(d.num_documents, d.seed)]
        write_atomic(corpus, "".join(lines).encode())
    spec = sft_prep.SftPrepSpec(
        sources=[str(corpus)],
        packed_file=path,
        tokenizer_path=str(blend.parent / "tokenizer.json"),
        seq_length=int(cfg.model.seq_length),
        chat_template=d.chat_template,
        eod_token=d.eod_token,
        overlong=sft_data.overlong_mode(d),
        split=str(d.split),
        seed=int(d.seed),
        num_workers=1,
        docs_per_shard=max(1, int(d.num_documents)),
    )
    preference_prep.prepare_dpo(spec, log=lambda line: None)


def prepare_tiny_dpo(cfg: Any) -> Path:
    """Generate and prepare the synthetic pairs if missing (rank 0; the others wait); the manifest."""
    return sft_data.prepare_once(tiny_manifest_path(cfg), lambda: _generate_tiny(cfg))


def resolve_dpo(cfg: Any) -> Tuple[data.TokenizerAdapter, Path, Dict[str, Any]]:
    """The tokenizer, manifest path and manifest of the preference data `cfg.data` names."""
    kind = sft_data.PackedKind("DPO", preference_prep.FORMAT, "data/prep_dpo", "dpo_tiny")
    return sft_data.resolve_packed(cfg, prepare_tiny_dpo, kind)


# ---- pairs as micro-batches ----------------------------------------------------------------------


class PreferenceDataset(torch.utils.data.Dataset):
    """The pairs of one split in a seeded shuffled order (see the module docstring for an item)."""

    def __init__(self, manifest_path: Path, split: str, eod: int, seed: int, attention_mask: bool = True) -> None:
        base = Path(manifest_path).parent / f"dpo-{split}"
        self.tokens = np.load(f"{base}.tokens.npy", mmap_mode="r")
        self.mask = np.load(f"{base}.mask.npy", mmap_mode="r")
        lengths = np.load(f"{base}.lengths.npy").astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)])
        self.seq_length = int(json.loads(Path(manifest_path).read_text())["seq_length"])
        self.eod, self.with_attention_mask = eod, attention_mask
        self.order = np.random.default_rng(seed).permutation(len(lengths) // 2)
        self.reference_logps: Optional[np.ndarray] = None
        """[pairs, 2] float32 reference answer log-probabilities by dataset index (chosen,
        rejected), when DPO precomputed them (`dpo.precompute_reference`): items then carry
        `ref_logps`."""

    def __len__(self) -> int:
        return len(self.order)

    def sample(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """(ids, answer mask) of sample k (pair k // 2; chosen when k is even)."""
        a, e = int(self.starts[k]), int(self.starts[k + 1])
        return np.asarray(self.tokens[a:e]), np.asarray(self.mask[a:e])

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        p = int(self.order[index])
        rows = [
            sft_data.pack_samples([self.sample(2 * p + side)], self.seq_length, self.eod, self.with_attention_mask)
            for side in (0, 1)
        ]
        item = {key: torch.stack([row[key] for row in rows]) for key in rows[0]}
        if self.reference_logps is not None:
            item["ref_logps"] = torch.from_numpy(np.array(self.reference_logps[index], np.float32))
        return item


def build_dpo_datasets(cfg: Any, attention_mask: bool) -> Tuple[data.TokenizerAdapter, Any, Optional[Any]]:
    """(tokenizer, train, valid or None) for `cfg`; valid only when train.eval_interval > 0."""
    tokenizer, path, manifest = resolve_dpo(cfg)
    seed = int(cfg.data.seed)
    train = PreferenceDataset(path, "train", tokenizer.eod, seed, attention_mask)
    valid = None
    if cfg.train.eval_interval > 0:
        if "valid" not in manifest["splits"]:
            raise ValueError(
                f"train.eval_interval>0 but data.split={manifest['split']!r} left no validation pairs in {path}"
            )
        valid = PreferenceDataset(path, "valid", tokenizer.eod, seed + 1, attention_mask)
    return tokenizer, train, valid
