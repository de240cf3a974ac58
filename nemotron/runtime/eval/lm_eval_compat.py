"""Every lm-evaluation-harness name the eval stage uses beyond `LM`/`simple_evaluate`, in one place.

`TemplateLM` (context/continuation encoding exactly as lm-eval's `hf` backend does it), the rolling
windows of perplexity tasks and the generation-kwargs helpers live in lm-eval modules that are not
its documented API; they are imported here, against the versions pyproject.toml allows.
"""

from __future__ import annotations

from nemotron.common.versions import refusal

SUPPORTED = {"lm-eval": ">=0.4.13,<0.5"}
"""The lm-eval releases these names were read in (0.4.13); pyproject.toml requires the same range."""

_REFUSED = refusal(SUPPORTED, "nemotron/runtime/eval/lm_eval_compat.py")
if _REFUSED:
    raise ImportError(_REFUSED)

from lm_eval.api.model import TemplateLM  # noqa: E402,F401 - re-exported
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs  # noqa: E402,F401 - re-exported
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window  # noqa: E402


def rolling_windows(tokens: list, prefix_token: int, max_length: int) -> list:
    """Disjoint (context, continuation) windows covering `tokens`, as the `hf` backend scores them."""
    windows = get_rolling_token_windows(
        token_list=tokens, prefix_token=prefix_token, max_seq_len=max_length, context_len=1
    )
    return [make_disjoint_window(w) for w in windows]
