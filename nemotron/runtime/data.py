"""Training data: the embedded tiny corpus, the tokenizer adapter, Megatron GPT datasets, iterators.

`data.generate_tiny=true` (the default) needs no network: `prepare_tiny()` generates a seeded
English-like corpus, trains a byte-level BPE on it with the `tokenizers` library and writes it as a
Megatron indexed dataset (.bin/.idx) under `data.cache_dir`, once. Every file is written under a
temp name and renamed, the .idx last, so an interrupted run never leaves a file that looks finished.
`build_datasets()` turns `data.prefixes` (or the generated prefix) into train/valid GPTDatasets with
Megatron's BlendedMegatronDatasetBuilder; `batch_iterator()` yields this data-parallel rank's
micro-batches.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

EOD_TOKEN = "<|endoftext|>"
CORPUS_VERSION = 1
"""Bump when the generator changes: the cache key (and so the file names) change with it."""

# ---- the embedded corpus: a small grammar, so a tiny model has structure to learn ----------------

_TOPICS = {
    "farm": ("cow horse hen goat farmer barn field fence tractor pig", "muddy green old quiet"),
    "city": ("bus taxi shop street tower bridge driver market train cafe", "busy loud tall grey"),
    "sea": ("ship boat fish wave sailor harbor island gull shell storm", "blue deep salty calm"),
    "home": ("cat dog chair table lamp window kitchen garden door bed", "warm small soft clean"),
}
_NAMES = "Anna Ben Clara David Emma Felix Grace Hugo Iris Jonas".split()
_VERBS = "saw found liked watched painted followed cleaned carried visited counted".split()
_INTRANSITIVE = "slept waited laughed rested smiled listened".split()
_ADVERBS = "slowly quickly happily quietly early late".split()
_PREPS = "near behind under beside across".split()


class _Grammar:
    """Sentences about one topic; the topic fixes nouns and adjectives for a whole document."""

    def __init__(self, rng: random.Random, topic: str) -> None:
        self.rng = rng
        nouns, adjectives = _TOPICS[topic]
        self.nouns, self.adjectives = nouns.split(), adjectives.split()

    def noun_phrase(self) -> str:
        pick = self.rng.choice
        if self.rng.random() < 0.4:
            return f"the {pick(self.adjectives)} {pick(self.nouns)}"
        return f"the {pick(self.nouns)}"

    def sentence(self) -> str:
        pick, roll = self.rng.choice, self.rng.random()
        if roll < 0.4:
            who_did_what = f"{pick(_NAMES)} {pick(_VERBS)} {self.noun_phrase()}"
            text = f"{who_did_what} {pick(_PREPS)} {self.noun_phrase()}"
        elif roll < 0.7:
            text = f"{self.noun_phrase()} {pick(_INTRANSITIVE)} {pick(_ADVERBS)}"
        else:
            text = f"{pick(_NAMES)} said that {self.noun_phrase()} {pick(_INTRANSITIVE)}"
        return text[0].upper() + text[1:] + "."


def generate_corpus(num_documents: int, seed: int) -> List[str]:
    """`num_documents` deterministic English-like documents of 3-8 sentences, each on one topic."""
    rng = random.Random(seed)
    documents = []
    for _ in range(num_documents):
        topic = rng.choice(sorted(_TOPICS))
        grammar = _Grammar(rng, topic)
        sentences = [grammar.sentence() for _ in range(rng.randint(3, 8))]
        documents.append(f"About the {topic}. " + " ".join(sentences))
    return documents


# ---- tokenizer -----------------------------------------------------------------------------------


class TokenizerAdapter:
    """What Megatron's GPTDataset and our runtime need from a `tokenizers` JSON tokenizer."""

    def __init__(self, path: str) -> None:
        from tokenizers import Tokenizer

        if not Path(path).is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path} (data.tokenizer_path)")
        self.path = str(path)
        self._tok = Tokenizer.from_file(self.path)
        self.vocab_size: int = self._tok.get_vocab_size()
        eod = self._tok.token_to_id(EOD_TOKEN)
        if eod is None:
            raise ValueError(f"tokenizer {path} has no {EOD_TOKEN!r} (end-of-document) token")
        self.eod: int = eod
        digest = hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12]
        self.unique_identifiers = {"class": "TokenizerAdapter", "path": self.path, "sha1": digest}

    def tokenize(self, text: str) -> List[int]:
        return self._tok.encode(text).ids

    def detokenize(self, ids: List[int]) -> str:
        return self._tok.decode(list(ids))


def _train_tokenizer(documents: List[str], vocab_size: int, path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(documents, trainer)
    tok.save(str(path))


# ---- the generated dataset on disk ---------------------------------------------------------------


def tiny_paths(data_cfg: Any) -> Tuple[str, str]:
    """(tokenizer.json path, indexed-dataset prefix) of the generated tiny data for `data_cfg`."""
    d = data_cfg
    key = f"v{CORPUS_VERSION}-n{d.num_documents}-t{d.tokenizer_vocab_size}-s{d.seed}"
    root = Path(data_cfg.cache_dir)
    return str(root / f"tiny-{key}.tokenizer.json"), str(root / f"tiny-{key}_text_document")


def _tmp(path: str) -> str:
    return f"{path}.tmp{os.getpid()}"


def _write_indexed(documents: List[str], tokenizer: TokenizerAdapter, prefix: str) -> None:
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    dtype = DType.optimal_dtype(tokenizer.vocab_size)
    builder = IndexedDatasetBuilder(_tmp(prefix + ".bin"), dtype=dtype)
    for text in documents:
        ids = tokenizer.tokenize(text) + [tokenizer.eod]
        builder.add_document(torch.tensor(ids, dtype=torch.int64), [len(ids)])
    builder.finalize(_tmp(prefix + ".idx"))
    os.replace(_tmp(prefix + ".bin"), prefix + ".bin")
    os.replace(_tmp(prefix + ".idx"), prefix + ".idx")  # last: its presence means "complete"


def _generate_tiny(data_cfg: Any) -> None:
    tokenizer_path, prefix = tiny_paths(data_cfg)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    documents = generate_corpus(data_cfg.num_documents, data_cfg.seed)
    if not Path(tokenizer_path).is_file():
        _train_tokenizer(documents, data_cfg.tokenizer_vocab_size, Path(_tmp(tokenizer_path)))
        os.replace(_tmp(tokenizer_path), tokenizer_path)
    _write_indexed(documents, TokenizerAdapter(tokenizer_path), prefix)


def tiny_is_complete(data_cfg: Any) -> bool:
    """True when the generated tokenizer, .bin and .idx for `data_cfg` are all on disk."""
    tokenizer_path, prefix = tiny_paths(data_cfg)
    return all(Path(p).is_file() for p in (tokenizer_path, prefix + ".bin", prefix + ".idx"))


def prepare_tiny(data_cfg: Any) -> Tuple[str, str]:
    """Generate the tiny data if missing (rank 0; the others wait); return (tokenizer, prefix)."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0 and not tiny_is_complete(data_cfg):
        _generate_tiny(data_cfg)
    if dist.is_initialized():
        dist.barrier()
    return tiny_paths(data_cfg)


# ---- Megatron datasets ---------------------------------------------------------------------------


def resolve_data(data_cfg: Any) -> Tuple[TokenizerAdapter, List[str], Optional[List[float]]]:
    """The tokenizer, prefixes and weights `data_cfg` names, generating the tiny data if asked."""
    prefixes, tokenizer_path = list(data_cfg.prefixes or []), data_cfg.tokenizer_path
    if data_cfg.generate_tiny:
        tiny_tokenizer, tiny_prefix = prepare_tiny(data_cfg)
        prefixes = prefixes or [tiny_prefix]
        tokenizer_path = tokenizer_path or tiny_tokenizer
    if not prefixes:
        raise ValueError("data.prefixes is empty and data.generate_tiny=false: no training data")
    for prefix in prefixes:
        missing = [prefix + ext for ext in (".bin", ".idx") if not Path(prefix + ext).is_file()]
        if missing:
            raise FileNotFoundError(
                f"data.prefixes: {' and '.join(missing)} not found; a prefix names a Megatron "
                "indexed dataset (path without .bin/.idx)"
            )
    if tokenizer_path is None:
        raise ValueError("data.tokenizer_path is required when data.generate_tiny=false")
    weights = list(data_cfg.weights) if data_cfg.weights is not None else None
    if weights is not None and len(weights) != len(prefixes):
        raise ValueError(
            f"data.weights has {len(weights)} entries for {len(prefixes)} data.prefixes")
    return TokenizerAdapter(tokenizer_path), prefixes, weights


def build_datasets(
    cfg: Any, tokenizer: TokenizerAdapter, prefixes: List[str], weights: Optional[List[float]],
    create_attention_mask: bool = True,
) -> Tuple[Any, Optional[Any]]:
    """Train and valid GPTDatasets sized for `train.steps` (and the evaluations) of `cfg`; valid is
    None when `train.eval_interval` is 0."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    train, gbs = cfg.train, cfg.train.global_batch_size
    num_evals = train.steps // train.eval_interval + 1 if train.eval_interval > 0 else 0
    sizes = [train.steps * gbs, num_evals * train.eval_iters * gbs, 0]
    config = GPTDatasetConfig(
        random_seed=cfg.data.seed,
        sequence_length=cfg.model.seq_length,
        blend=(prefixes, weights),
        split=cfg.data.split,
        tokenizer=tokenizer,
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=create_attention_mask,
        path_to_cache=str(Path(cfg.data.cache_dir) / "index_cache"),
        mmap_bin_files=True,
    )
    builder = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config)
    train_ds, valid_ds, _ = builder.build()
    if num_evals and valid_ds is None:
        raise ValueError(
            f"train.eval_interval>0 but data.split={cfg.data.split!r} leaves no validation data")
    return train_ds, valid_ds if num_evals else None


# ---- micro-batches for one data-parallel rank ----------------------------------------------------


def _rank_batches(num_samples: int, micro_batch_size: int, dp_rank: int,
                  dp_size: int) -> Iterator[List[int]]:
    """Like Megatron-LM's MegatronPretrainingSampler: consecutive chunks of mbs x dp samples, this
    rank's slice of each. The union over ranks is the same sample order for any DP size."""
    chunk = micro_batch_size * dp_size
    for start in range(0, num_samples - chunk + 1, chunk):
        first = start + dp_rank * micro_batch_size
        yield list(range(first, first + micro_batch_size))


def batch_iterator(dataset: Any, micro_batch_size: int, dp_rank: int,
                   dp_size: int) -> Iterator[Dict[str, torch.Tensor]]:
    """Endless micro-batches (dicts of tokens, labels, loss_mask, position_ids[, attention_mask])."""
    from torch.utils.data import DataLoader

    batches = list(_rank_batches(len(dataset), micro_batch_size, dp_rank, dp_size))
    if not batches:
        raise ValueError(f"a dataset of {len(dataset)} samples has no full micro-batch of "
                         f"{micro_batch_size} samples x {dp_size} data-parallel ranks")
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=0)
    while True:
        yield from loader
