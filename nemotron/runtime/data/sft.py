"""SFT training data: the embedded synthetic chats, and packed bins as Megatron micro-batches.

`resolve_sft(cfg)` finds the manifest `data.packed_file` names (written by `+recipe=data/prep_sft`,
nemotron/runtime/prep/sft.py), or, with `data.generate_tiny=true` (data=sft_tiny), writes a seeded
synthetic chat file under `data.cache_dir` and prepares it in this process with the tokenizer of
the embedded pretraining data (data=tiny), so a tiny pretrained checkpoint fits it; no network.

A `PackedSFTDataset` item is one bin of `model.seq_length` positions: `tokens`, `labels`,
`loss_mask` (1 on assistant targets only), `position_ids` restarting at 0 in every sample,
`segment_ids` (the sample each position belongs to; padding is a segment of its own) and, for the
local layer spec, a block-diagonal causal `attention_mask` (True = masked, Megatron's convention),
so no sample attends to another. Bins are visited in a seeded shuffled order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from nemotron.common.atomic_files import write_atomic
from nemotron.runtime.data import gpt as data
from nemotron.runtime.prep import sft as sft_prep

SFT_CORPUS_VERSION = 1
"""Bump when the chat generator changes: the cache folder changes with it."""
_PRETRAIN_TINY_DOCUMENTS = 2000
"""data=tiny's num_documents: the embedded pretraining data whose tokenizer the chats use."""

# ---- the embedded synthetic chats ----------------------------------------------------------------


def _task(rng: random.Random, grammar: Any, topic: str) -> Tuple[str, str]:
    sentence = grammar.sentence()
    words = sentence.rstrip(".").split()
    roll = rng.random()
    if roll < 0.35:
        return f"Repeat this sentence: {sentence}", sentence
    if roll < 0.6:
        return f"What is this sentence about? {sentence}", f"It is about the {topic}."
    if roll < 0.8:
        return f"What is the first word of: {sentence}", f"The first word is {words[0]}."
    return f"How many words are in: {sentence}", f"There are {len(words)} words."


def generate_conversations(num: int, seed: int) -> List[Dict[str, Any]]:
    """`num` deterministic chats (1-3 user/assistant turns, some with a system prompt)."""
    rng = random.Random(seed)
    chats = []
    for _ in range(num):
        topic = rng.choice(sorted(data.TOPICS))
        grammar = data.Grammar(rng, topic)
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": "You answer briefly."})
        for _ in range(rng.randint(1, 3)):
            question, answer = _task(rng, grammar, topic)
            messages += [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]
        chats.append({"messages": messages})
    return chats


def pretrain_tiny(d: Any) -> SimpleNamespace:
    """The data=tiny config beside this cache (same paths.cache_dir), for its tokenizer."""
    return SimpleNamespace(cache_dir=str(Path(d.cache_dir).parent / "tiny"),
                           num_documents=_PRETRAIN_TINY_DOCUMENTS, seed=1234,
                           tokenizer_vocab_size=d.tokenizer_vocab_size, eod_token=d.eod_token)


def overlong_mode(d: Any) -> str:
    return str(getattr(d.overlong, "value", d.overlong))


def tiny_manifest_path(cfg: Any) -> Path:
    """The manifest of the generated chats for `cfg` (corpus and samples beside it)."""
    d = cfg.data
    key = (f"v{SFT_CORPUS_VERSION}-n{d.num_documents}-t{d.tokenizer_vocab_size}-s{d.seed}"
           f"-l{cfg.model.seq_length}-{overlong_mode(d)}")
    return Path(d.cache_dir) / f"sft-tiny-{key}" / "sft.json"


def _generate_tiny(cfg: Any) -> None:
    d, path = cfg.data, tiny_manifest_path(cfg)
    blend = data.prepare_tiny(pretrain_tiny(d))
    corpus = write_tiny_chats(d, path.parent)
    spec = sft_prep.SftPrepSpec(
        sources=[str(corpus)], packed_file=path, tokenizer_path=str(blend.parent / "tokenizer.json"),
        seq_length=int(cfg.model.seq_length), chat_template=d.chat_template, eod_token=d.eod_token,
        overlong=overlong_mode(d), split=str(d.split), seed=int(d.seed), num_workers=1,
        docs_per_shard=max(1, int(d.num_documents)))
    sft_prep.prepare_sft(spec, log=lambda line: None)


def write_tiny_chats(data_cfg: Any, out_dir: Path) -> Path:
    """The embedded synthetic chats as an SFT prep source: `chats.jsonl` in `out_dir` (written once).
    The data/prep_sft recipe uses it for `data.generate_tiny=true` with no `data.sources`."""
    corpus = Path(out_dir) / "chats.jsonl"
    if not corpus.is_file():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(c) + "\n" for c in generate_conversations(data_cfg.num_documents, data_cfg.seed)]
        write_atomic(corpus, "".join(lines).encode())
    return corpus


def prepare_once(path: Path, generate: Callable[[], None]) -> Path:
    """Rank 0 runs `generate` under a file lock when `path` is missing; every rank waits; `path`."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0 and not path.is_file():
        with data.exclusive_lock(path.parent.parent / f".{path.parent.name}.lock"):
            if not path.is_file():
                generate()
    if dist.is_initialized():
        dist.barrier()
    return path


def prepare_tiny_sft(cfg: Any) -> Path:
    """Generate and prepare the synthetic chats if missing (rank 0; the others wait); the manifest."""
    return prepare_once(tiny_manifest_path(cfg), lambda: _generate_tiny(cfg))


def resolve_sft(cfg: Any) -> Tuple[data.TokenizerAdapter, Path, Dict[str, Any]]:
    """The tokenizer, manifest path and manifest of the SFT data `cfg.data` names."""
    return resolve_packed(cfg, prepare_tiny_sft, PackedKind("SFT", sft_prep.FORMAT, "data/prep_sft", "sft_tiny"))


@dataclass(frozen=True)
class PackedKind:
    """What a stage's prepared data is: its name in errors, manifest format, prep recipe and tiny data option."""

    name: str
    format: str
    prep_recipe: str
    tiny_option: str


def resolve_packed(
    cfg: Any, prepare_tiny: Callable[[Any], Path], kind: PackedKind
) -> Tuple[data.TokenizerAdapter, Path, Dict[str, Any]]:
    """The tokenizer, manifest path and manifest of the prepared data `cfg.data` names (the synthetic
    tiny data, prepared on first use, or data.packed_file), checked against `kind` and the model."""
    d = cfg.data
    if d.generate_tiny:
        path = prepare_tiny(cfg)
    elif d.packed_file:
        path = Path(d.packed_file)
    else:
        raise ValueError(f"no {kind.name} data: set data.packed_file (from +recipe={kind.prep_recipe}) or "
                         f"data.generate_tiny=true (data={kind.tiny_option})")
    if not path.is_file():
        raise FileNotFoundError(f"data.packed_file={path} not found; write it with "
                                f"python -m nemotron.train +recipe={kind.prep_recipe} data.sources=[...]")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != kind.format:
        raise ValueError(f"{path} is not a {kind.name} manifest ({kind.format}, from +recipe={kind.prep_recipe}) "
                         f"but {manifest.get('format')!r}; prepare it again")
    if manifest["seq_length"] != cfg.model.seq_length:
        raise ValueError(f"{path} was prepared for seq_length {manifest['seq_length']} but "
                         f"model.seq_length={cfg.model.seq_length}; prepare it again with that")
    tokenizer = data.TokenizerAdapter(str(path.parent / manifest["tokenizer"]), d.eod_token)
    return tokenizer, path, manifest


# ---- packed bins ---------------------------------------------------------------------------------


class PackedSFTDataset(torch.utils.data.Dataset):
    """The bins of one split (see the module docstring for an item's fields)."""

    def __init__(self, manifest_path: Path, split: str, eod: int, seed: int,
                 attention_mask: bool = True) -> None:
        base = Path(manifest_path).parent / f"sft-{split}"
        self.tokens = np.load(f"{base}.tokens.npy", mmap_mode="r")
        self.mask = np.load(f"{base}.mask.npy", mmap_mode="r")
        lengths = np.load(f"{base}.lengths.npy").astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)])
        self.bins = np.load(f"{base}.bins.npy")
        self.seq_length = int(json.loads(Path(manifest_path).read_text())["seq_length"])
        self.eod, self.with_attention_mask = eod, attention_mask
        self.order = np.random.default_rng(seed).permutation(len(self.bins) - 1)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        b = int(self.order[index])
        return pack_samples(self._samples(b), self.seq_length, self.eod, self.with_attention_mask)

    def _samples(self, b: int) -> List[Tuple[np.ndarray, np.ndarray]]:
        out = []
        for k in range(int(self.bins[b]), int(self.bins[b + 1])):
            a, e = int(self.starts[k]), int(self.starts[k + 1])
            out.append((np.asarray(self.tokens[a:e]), np.asarray(self.mask[a:e])))
        return out


def pack_samples(samples: List[Tuple[np.ndarray, np.ndarray]], seq_length: int, pad: int,
                 attention_mask: bool = True) -> Dict[str, torch.Tensor]:
    """One packed row from (ids, target mask) samples: each predicts its ids[1:] from ids[:-1]."""
    tokens = np.full(seq_length, pad, np.int64)
    labels = np.full(seq_length, pad, np.int64)
    loss_mask = np.zeros(seq_length, np.float32)
    positions = np.zeros(seq_length, np.int64)
    segments = np.full(seq_length, len(samples), np.int64)  # padding: a segment of its own
    at = 0
    for k, (ids, mask) in enumerate(samples):
        n = len(ids) - 1
        tokens[at:at + n], labels[at:at + n] = ids[:-1], ids[1:]
        loss_mask[at:at + n] = mask[1:]
        positions[at:at + n] = np.arange(n)
        segments[at:at + n] = k
        at += n
    positions[at:] = np.arange(seq_length - at)
    item = {"tokens": torch.from_numpy(tokens), "labels": torch.from_numpy(labels),
            "loss_mask": torch.from_numpy(loss_mask), "position_ids": torch.from_numpy(positions),
            "segment_ids": torch.from_numpy(segments)}
    if attention_mask:
        item["attention_mask"] = block_causal_mask(item["segment_ids"])
    return item


def block_causal_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """[1, s, s] bool, True where query i may NOT attend key j (j > i or another sample)."""
    s = segment_ids.shape[-1]
    causal = torch.ones(s, s, dtype=torch.bool).tril()
    same = segment_ids[:, None] == segment_ids[None, :]
    return ~(causal & same)[None]


def build_sft_datasets(cfg: Any, attention_mask: bool) -> Tuple[data.TokenizerAdapter, Any, Optional[Any]]:
    """(tokenizer, train, valid or None) for `cfg`; valid only when train.eval_interval > 0."""
    tokenizer, path, manifest = resolve_sft(cfg)
    seed = int(cfg.data.seed)
    train = PackedSFTDataset(path, "train", tokenizer.eod, seed, attention_mask)
    valid = None
    if cfg.train.eval_interval > 0:
        if "valid" not in manifest["splits"]:
            raise ValueError(f"train.eval_interval>0 but data.split={manifest['split']!r} left no "
                             f"validation samples in {path}")
        valid = PackedSFTDataset(path, "valid", tokenizer.eod, seed + 1, attention_mask)
    return tokenizer, train, valid
