"""Training data: the embedded tiny corpus, the tokenizer adapter, Megatron GPT datasets, iterators.

`resolve_data()` finds what `data` names, in this order: `data.prefixes` (+ `data.tokenizer_path`),
a `data.blend_file` written by the prep recipe (nemotron/runtime/prep/text.py), or, with
`data.generate_tiny=true` (the default), the embedded tiny data: `prepare_tiny()` writes a seeded
English-like corpus as `corpus.txt` under `data.cache_dir` and runs the same prep on it in this
process (one worker, one shard, a BPE trained on it), once; no network needed.
`build_datasets()` turns the prefixes into train/valid GPTDatasets with Megatron's
BlendedMegatronDatasetBuilder; `batch_iterator()` yields this data-parallel rank's micro-batches.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import random
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch

from nemotron.common import blend as blend_file
from nemotron.common.blend import CORPUS_VERSION, tiny_blend_path  # noqa: F401 - part of this module's API
from nemotron.common.atomic_files import write_atomic
from nemotron.common.tokenizer_files import EOD_TOKEN, tokenizer_json


# ---- the embedded corpus: a small grammar, so a tiny model has structure to learn ----------------

TOPICS = {
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


class Grammar:
    """Sentences about one topic; the topic fixes nouns and adjectives for a whole document."""

    def __init__(self, rng: random.Random, topic: str) -> None:
        self.rng = rng
        nouns, adjectives = TOPICS[topic]
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
        topic = rng.choice(sorted(TOPICS))
        grammar = Grammar(rng, topic)
        sentences = [grammar.sentence() for _ in range(rng.randint(3, 8))]
        documents.append(f"About the {topic}. " + " ".join(sentences))
    return documents


# ---- tokenizer -----------------------------------------------------------------------------------


class TokenizerAdapter:
    """What Megatron's GPTDataset and our runtime need from a `tokenizers` JSON tokenizer."""

    def __init__(self, path: str, eod_token: str = EOD_TOKEN) -> None:
        from tokenizers import Tokenizer

        path = tokenizer_json(path)  # a Hugging Face tokenizer directory means its tokenizer.json
        if not Path(path).is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path} (data.tokenizer_path)")
        self.path = str(path)
        self._tok = Tokenizer.from_file(self.path)
        self.vocab_size: int = self._tok.get_vocab_size()
        eod = self._tok.token_to_id(eod_token)
        if eod is None:
            raise ValueError(f"tokenizer {path} has no {eod_token!r} end-of-document token (data.eod_token)")
        self.eod: int = eod
        self.sha1 = hashlib.sha1(Path(path).read_bytes()).hexdigest()
        self.unique_identifiers = {"class": "TokenizerAdapter", "path": self.path, "sha1": self.sha1[:12]}

    def tokenize(self, text: str) -> List[int]:
        return self._tok.encode(text).ids

    def detokenize(self, ids: List[int]) -> str:
        return self._tok.decode(list(ids))


# ---- the embedded tiny data, prepared by the prep recipe's own code ------------------------------


def tiny_is_complete(data_cfg: Any) -> bool:
    """True when the tiny blend file and every file it names are on disk."""
    path = tiny_blend_path(data_cfg)
    try:
        return not blend_file.missing_files(blend_file.read_blend(path))
    except (OSError, ValueError):
        return False


def _generate_tiny(data_cfg: Any) -> None:
    from nemotron.runtime.prep import text as prep  # offline prep code, needed only the first time

    path = tiny_blend_path(data_cfg)
    corpus = write_tiny_corpus(data_cfg, path.parent)
    spec = prep.PrepSpec(sources=[str(corpus)], blend_file=path, vocab_size=data_cfg.tokenizer_vocab_size,
                         eod_token=data_cfg.eod_token, num_workers=1,
                         docs_per_shard=max(1, data_cfg.num_documents))
    prep.prepare(spec, log=lambda line: None)


def write_tiny_corpus(data_cfg: Any, out_dir: Path) -> Path:
    """The embedded corpus as a prep source: `corpus.txt` in `out_dir` (written once). The data/prep
    recipe uses it for `data.generate_tiny=true` with no `data.sources` (a pipeline's data stage)."""
    corpus = Path(out_dir) / "corpus.txt"
    if not corpus.is_file():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        documents = generate_corpus(data_cfg.num_documents, data_cfg.seed)
        write_atomic(corpus, "".join(d + "\n" for d in documents).encode())
    return corpus


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock: jobs sharing one data cache prepare it one at a time."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_tiny(data_cfg: Any) -> Path:
    """Generate and prepare the tiny data if missing (rank 0; the others wait); its blend file."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    if rank == 0 and not tiny_is_complete(data_cfg):
        with exclusive_lock(tiny_blend_path(data_cfg).parent / ".prepare.lock"):
            if not tiny_is_complete(data_cfg):  # another job may have finished it while we waited
                _generate_tiny(data_cfg)
    if dist.is_initialized():
        dist.barrier()
    return tiny_blend_path(data_cfg)


# ---- what the data config names ------------------------------------------------------------------


def _check_prefixes(prefixes: List[str], key: str) -> None:
    for prefix in prefixes:
        missing = [prefix + ext for ext in (".bin", ".idx") if not Path(prefix + ext).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{key}: {' and '.join(missing)} not found; a prefix names a Megatron "
                "indexed dataset (path without .bin/.idx)"
            )


def _from_prefixes(data_cfg: Any) -> Tuple[TokenizerAdapter, List[str], Optional[List[float]]]:
    prefixes = list(data_cfg.prefixes)
    _check_prefixes(prefixes, "data.prefixes")
    if data_cfg.tokenizer_path is None:
        raise ValueError("data.tokenizer_path is required with data.prefixes")
    weights = list(data_cfg.weights) if data_cfg.weights is not None else None
    if weights is not None and len(weights) != len(prefixes):
        raise ValueError(f"data.weights has {len(weights)} entries for {len(prefixes)} data.prefixes")
    return TokenizerAdapter(data_cfg.tokenizer_path, data_cfg.eod_token), prefixes, weights


def _from_blend(data_cfg: Any, path: Any) -> Tuple[TokenizerAdapter, List[str], Optional[List[float]]]:
    if data_cfg.weights is not None:
        raise ValueError("data.weights applies to data.prefixes; a blend file carries its own weights "
                         "(set data.source_weights when preparing it)")
    blend = blend_file.read_blend(path)
    _check_prefixes(blend.prefixes, f"data.blend_file {blend.path}")
    tokenizer = TokenizerAdapter(blend.tokenizer_path, data_cfg.eod_token)
    if tokenizer.sha1 != blend.tokenizer_sha1:
        raise ValueError(f"{blend.tokenizer_path} changed after {blend.path} was prepared; prepare again")
    given = data_cfg.tokenizer_path
    if given and TokenizerAdapter(given, data_cfg.eod_token).sha1 != tokenizer.sha1:
        raise ValueError(f"data.tokenizer_path={data_cfg.tokenizer_path} is not the tokenizer "
                         f"{blend.path} was prepared with ({blend.tokenizer_path}); drop one of them")
    return tokenizer, blend.prefixes, blend.megatron_weights()


def resolve_data(data_cfg: Any) -> Tuple[TokenizerAdapter, List[str], Optional[List[float]]]:
    """The tokenizer, prefixes and weights `data_cfg` names, preparing the tiny data if asked."""
    if data_cfg.prefixes and data_cfg.blend_file:
        raise ValueError("data.prefixes and data.blend_file are both set; use one of them")
    if data_cfg.prefixes:
        return _from_prefixes(data_cfg)
    if data_cfg.blend_file:
        return _from_blend(data_cfg, data_cfg.blend_file)
    if data_cfg.generate_tiny:
        return _from_blend(data_cfg, prepare_tiny(data_cfg))
    raise ValueError("no training data: set data.prefixes, data.blend_file or data.generate_tiny=true")


# ---- Megatron datasets ---------------------------------------------------------------------------


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


def batch_iterator(dataset: Any, micro_batch_size: int, dp_rank: int, dp_size: int,
                   start_sample: int = 0) -> Iterator[Dict[str, torch.Tensor]]:
    """Endless micro-batches (dicts of tokens, labels, loss_mask, position_ids[, attention_mask]),
    beginning `start_sample` samples into the global order (a resumed run's data position)."""
    from torch.utils.data import DataLoader

    batches = list(_rank_batches(len(dataset), micro_batch_size, dp_rank, dp_size))
    if not batches:
        raise ValueError(f"a dataset of {len(dataset)} samples has no full micro-batch of "
                         f"{micro_batch_size} samples x {dp_size} data-parallel ranks")
    skip = start_sample // (micro_batch_size * dp_size) % len(batches)
    # Each pass over a DataLoader draws a seed from its generator: a private one leaves the global
    # torch RNG (dropout) alone, so a resumed run's RNG stream matches an uninterrupted one.
    generator = torch.Generator()
    yield from DataLoader(dataset, batch_sampler=batches[skip:], num_workers=0, generator=generator)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=0, generator=generator)
    while True:
        yield from loader
