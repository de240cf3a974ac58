"""Our Megatron-Core model as an lm-evaluation-harness `LM`: loglikelihood, loglikelihood_rolling and
generate_until.

Tokenization follows lm-eval's `hf` backend (`TemplateLM`: trailing spaces of a context move to the
continuation, an empty context is the end-of-document token, inputs keep their last
`model.seq_length` tokens), so scores compare with the `hf` backend on the exported model. Scoring
right-pads a batch (a causal mask keeps padding out of the real positions) and normalises only the
positions that predict a continuation token; generation is the
KV-cache sampler (`nemotron.runtime.model.generate`, greedy unless a task samples), each text cut at
the first of the task's stop sequences.

Data parallelism is lm-eval's own: the LM reports its data-parallel rank and size (`DataParallel`), so
lm-eval gives each replica every world_size-th document (the `limit` counted over the whole task),
pads the shorter replicas with copies of their last request so collective calls stay in step, and
gathers every replica's per-document metrics to data-parallel rank 0 over our data-parallel group. The
tensor-parallel ranks of one replica share its rank and evaluate the same requests together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.distributed as dist

from nemotron.common.progress import Progress
from nemotron.runtime.eval import lm_eval_compat as compat
from nemotron.runtime.model.generate import SamplingSettings, causal_mask, generate

Scored = Tuple[float, bool]


@dataclass(frozen=True)
class LMSettings:
    """What the adapter needs besides the model and tokenizer."""

    max_length: int
    """Most tokens one forward sees (model.seq_length)."""
    batch_size: int
    max_gen_toks: int
    """Default generation length when a task names none."""
    eos_text: str
    """The end-of-document token's text: a stop sequence of every generation (as in `hf`)."""
    seed: int = 0


@dataclass(frozen=True)
class DataParallel:
    """This process's place among the model's replicas (Megatron's data-parallel group)."""

    rank: int = 0
    size: int = 1
    group: Any = None
    """The torch.distributed group of the replicas (None: one replica)."""


class MegatronLM(compat.TemplateLM):
    """lm-eval LM over a Megatron GPT or hybrid model (eval mode) and our tokenizer adapter."""

    backend = "causal"

    def __init__(
        self, model: Any, tokenizer: Any, settings: LMSettings, device: Any = None, dp: DataParallel = DataParallel()
    ) -> None:
        super().__init__()
        self.model, self.tokenizer, self.settings, self.device_ = model, tokenizer, settings, device
        self.max_length = settings.max_length
        self.dp = dp
        self._rank, self._world_size = dp.rank, dp.size
        self.requests_scored = 0
        """Requests this replica ran through the model (scoring windows and generations)."""

    # ---- data parallelism (lm-eval calls these when world_size > 1) ------------------------------

    @property
    def device(self) -> Any:
        return self.device_ or torch.device("cpu")

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.zeros_like(tensor) for _ in range(self.dp.size)]
        dist.all_gather(parts, tensor, group=self.dp.group)
        return torch.stack(parts)

    def gather_object(self, obj: Any, dst: int = 0) -> Any:
        out = [None] * self.dp.size if self.dp.rank == dst else None
        dist.gather_object(obj, out, dst=dist.get_global_rank(self.dp.group, dst), group=self.dp.group)
        return out

    def barrier(self) -> None:
        dist.barrier(group=self.dp.group)

    @property
    def eot_token_id(self) -> int:
        return int(self.tokenizer.eod)

    def tok_encode(self, string: str, add_special_tokens: Any = None, **kwargs: Any) -> List[int]:
        return list(self.tokenizer.tokenize(string))

    def tok_decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.detokenize(list(tokens))

    # ---- scoring ---------------------------------------------------------------------------------

    @torch.no_grad()
    def _logits(self, rows: List[List[int]]) -> torch.Tensor:
        """[b, l, V] logits of the next token after each position of `rows` (right-padded)."""
        length = max(len(r) for r in rows)
        padded = [r + [self.eot_token_id] * (length - len(r)) for r in rows]
        tokens = torch.tensor(padded, device=self.device_)
        positions = torch.arange(length, device=tokens.device)[None].expand_as(tokens)
        return self.model(tokens, positions, causal_mask(length, tokens.device), runtime_gather_output=True)

    def _score_batch(self, pairs: List[Tuple[List[int], List[int]]]) -> List[Scored]:
        """Each pair scored from the fp32 log-softmax of the positions predicting its continuation
        (the only rows normalised: a row's log-softmax does not depend on the others)."""
        inputs = [(ctx + cont)[-(self.max_length + 1) :][:-1] for ctx, cont in pairs]
        logits = self._logits(inputs)
        lengths = [len(cont) for _, cont in pairs]
        rows = [i for i, n in enumerate(lengths) for _ in range(n)]
        cols = [p for inp, n in zip(inputs, lengths, strict=True) for p in range(len(inp) - n, len(inp))]
        target = torch.tensor([t for _, cont in pairs for t in cont], device=logits.device)
        logp = torch.log_softmax(logits[rows, cols].float(), dim=-1)
        picked = logp.gather(-1, target[:, None])[:, 0].split(lengths)
        greedy = (logp.argmax(-1) == target).split(lengths)
        totals = torch.stack([p.sum() for p in picked]).tolist()
        hits = torch.stack([g.all() for g in greedy]).tolist()
        return [(float(t), bool(h)) for t, h in zip(totals, hits, strict=True)]

    def _loglikelihood_tokens(self, requests: List[Any], disable_tqdm: bool = False, **kwargs: Any) -> List[Scored]:
        """(sum of log p(continuation | context), whether it is the greedy continuation) of each
        (key, context ids, continuation ids); longest first, in batches of `batch_size`."""
        pairs = [(list(ctx), list(cont)) for _, ctx, cont in requests]
        self.requests_scored += len(pairs)
        order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
        results: Dict[int, Scored] = {}
        size = self.settings.batch_size
        with self._progress("eval loglikelihood", len(order)) as progress:
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                results.update(zip(chunk, self._score_batch([pairs[i] for i in chunk]), strict=True))
                progress.update(len(chunk))
        return [results[i] for i in range(len(pairs))]

    def _progress(self, what: str, total: int) -> Progress:
        """Requests done of `total` (this replica's share), shown by global rank 0 only."""
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        return Progress(what, total=total, unit="requests", quiet=rank != 0)

    def loglikelihood_rolling(self, requests: List[Any], disable_tqdm: bool = False) -> List[float]:
        """Log-likelihood of each whole text, in disjoint windows of `max_length` tokens."""
        windows, owner = [], []
        for n, (text,) in enumerate(req.args for req in requests):
            for ctx, cont in compat.rolling_windows(self.tok_encode(text), self.eot_token_id, self.max_length):
                windows.append((None, ctx, cont))
                owner.append(n)
        totals = [0.0] * len(requests)
        for n, (logprob, _) in zip(owner, self._loglikelihood_tokens(windows), strict=True):
            totals[n] += logprob
        return totals

    # ---- generation ------------------------------------------------------------------------------

    def _settings(self, kwargs: Dict[str, Any]) -> SamplingSettings:
        return SamplingSettings(
            max_new_tokens=int(kwargs["max_gen_toks"]),
            eos=self.eot_token_id,
            vocab_size=int(self.tokenizer.vocab_size),
            temperature=float(kwargs.get("temperature") or 0.0) if kwargs.get("do_sample") else 0.0,
            top_p=float(kwargs.get("top_p") or 1.0),
            seed=self.settings.seed,
        )

    def _generate_group(self, contexts: List[str], kwargs: Dict[str, Any], until: List[str]) -> List[str]:
        sampling = self._settings(kwargs)
        keep = self.max_length - sampling.max_new_tokens
        prompts = [self.tok_encode(c)[-keep:] for c in contexts]
        texts = []
        for start in range(0, len(prompts), self.settings.batch_size):
            out = generate(self.model, prompts[start : start + self.settings.batch_size], sampling, self.device_)
            texts += [self.tok_decode([t for t in r if t != self.eot_token_id]) for r in out.responses]
        return [_cut(text, until) for text in texts]

    def generate_until(self, requests: List[Any], disable_tqdm: bool = False) -> List[str]:
        """Each context's continuation, cut at the first stop sequence (`until`, and end of document)."""
        groups: Dict[str, List[int]] = {}
        prepared = []
        self.requests_scored += len(requests)
        for n, (context, gen_kwargs) in enumerate(req.args for req in requests):
            kwargs = compat.normalize_gen_kwargs(dict(gen_kwargs), self.settings.max_gen_toks)
            until = compat.handle_stop_sequences(kwargs.pop("until", None), eos=self.settings.eos_text)
            prepared.append((context, kwargs, until))
            groups.setdefault(repr((sorted(kwargs.items()), until)), []).append(n)
        out: Dict[int, str] = {}
        with self._progress("eval generation", len(requests)) as progress:
            for members in groups.values():
                _, kwargs, until = prepared[members[0]]
                texts = self._generate_group([prepared[i][0] for i in members], kwargs, until)
                out.update(zip(members, texts, strict=True))
                progress.update(len(members))
        return [out[i] for i in range(len(requests))]


def _cut(text: str, until: List[str]) -> str:
    for stop in until:
        if stop:
            text = text.split(stop)[0]
    return text
