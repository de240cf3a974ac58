"""SFT prep's batched loss masks (`chat.token_masks`) against the one-conversation rule (`chat.token_mask`).

Two tokenizers built here: a byte-level BPE (every character covered, byte pieces of one character
share its offsets) and a WordPiece behind a BERT normalizer and a whitespace pre-tokenizer (spaces
and newlines belong to no token, accents are stripped). Plus crafted offsets: out of order, empty
tokens, (0, 0) specials, spans out of order, empty spans and conversations.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from nemotron.runtime.data import sft as sft_data
from nemotron.runtime.prep import chat
from nemotron.runtime.prep.text import EOD_TOKEN

EXTRA = ["Café crème, naïve résumé.", "日本語のテキスト", "emoji 🙂🙃 ok", "  spaced   out  \n\n", "", "x"]


def _conversations(num: int):
    rng = random.Random(7)
    chats = [c["messages"] for c in sft_data.generate_conversations(num, seed=3)]
    for messages in chats[::5]:  # some non-ASCII and whitespace-only content, in either role
        messages[rng.randrange(len(messages))]["content"] = rng.choice(EXTRA)
    return chats


def _byte_bpe(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[EOD_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def _wordpiece(texts):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]", EOD_TOKEN], show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


@pytest.mark.parametrize("build", [_byte_bpe, _wordpiece])
def test_batched_masks_equal_the_per_conversation_rule(build):
    renderer = chat.ChatRenderer(chat.DEFAULT_TEMPLATE, EOD_TOKEN)
    rendered = [renderer.render(m, "x") for m in _conversations(600)]
    tok = build([r.text for r in rendered[:200]])
    offsets = [e.offsets for e in tok.encode_batch([r.text for r in rendered], add_special_tokens=False)]
    spans = [r.spans for r in rendered]
    assert any(None in (e.char_to_token(i) for i in range(len(r.text)))
               for e, r in zip(tok.encode_batch([r.text for r in rendered[:20]]), rendered[:20])) == (build is _wordpiece)
    for size in (1, 7, 512):
        for i in range(0, len(rendered), size):
            _same(offsets[i:i + size], spans[i:i + size])


def _same(offsets, spans):
    got = chat.token_masks(offsets, spans)
    want = [chat.token_mask(o, s) for o, s in zip(offsets, spans)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype == np.uint8 and g.tolist() == w.tolist()


def test_batched_masks_on_crafted_offsets():
    ordered = [(0, 3), (3, 5), (5, 5), (5, 9), (9, 12)]
    _same([ordered, [], [(0, 0), (0, 4), (4, 4)], ordered], [((3, 9),), ((0, 2),), ((1, 4),), ()])
    _same([ordered, [(0, 0), *ordered, (0, 0)]], [((0, 5), (5, 9)), ((4, 4), (9, 12))])  # empty span
    _same([[(5, 9), (0, 3), (3, 5)], ordered], [((0, 4),), ((3, 6),)])  # tokens out of order in one
    _same([ordered, ordered], [((5, 9), (0, 3)), ((3, 6),)])  # spans out of order
    _same([[], []], [(), ()])
    _same([], [])
    rng = random.Random(1)
    for _ in range(300):  # random offsets, ordered or not, and random spans
        offsets, spans = [], []
        for _ in range(rng.randint(1, 6)):
            n = rng.randint(0, 12)
            starts = sorted(rng.randint(0, 30) for _ in range(n))
            if rng.random() < 0.2:
                rng.shuffle(starts)
            offsets.append([(s, s + rng.choice([0, 1, 1, 2, 4])) for s in starts])
            bounds = sorted(rng.randint(0, 32) for _ in range(2 * rng.randint(0, 3)))
            pairs = list(zip(bounds[::2], bounds[1::2]))
            if rng.random() < 0.1:
                pairs.reverse()
            spans.append(tuple(pairs))
        _same(offsets, spans)
