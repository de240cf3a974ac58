"""Config -> MLflow params (flattening, MLflow's limits) and secret redaction, without a server."""

from __future__ import annotations

from nemotron.tracking.params import MAX_PARAM_VALUE_LEN, flatten, safe_key, to_params, to_tags, truncate
from nemotron.tracking.secrets import REDACTED, is_secret_name, redact, scrub_text


def test_flatten_dots_nested_keys_and_keeps_lists_whole():
    flat = flatten({"model": {"num_layers": 2, "moe": {"topk": 2}}, "data": {"prefixes": ["a", "b"]}, "x": {}})
    assert flat == {"model.num_layers": 2, "model.moe.topk": 2, "data.prefixes": ["a", "b"], "x": {}}
    assert to_params({"data": {"prefixes": ["a", "b"]}, "n": None}) == {"data.prefixes": '["a", "b"]', "n": "None"}


def test_too_long_value_is_cut_with_a_marker_naming_the_full_config():
    value = to_params({"note": "y" * 10_000})["note"]
    assert len(value) == MAX_PARAM_VALUE_LEN
    assert value.endswith("...[truncated: 10000 chars; full value in config/resolved.yaml]")
    assert truncate("short", 10) == "short"
    assert len(to_tags({"t": "z" * 9000})["t"]) == 8000


def test_keys_mlflow_refuses_are_rewritten_not_dropped():
    assert safe_key("cluster.env.A*B") == "cluster.env.A_B"
    long_key = "k" * 300
    assert len(safe_key(long_key)) == 250 and safe_key(long_key).startswith("...")
    assert to_params({"env": {"what?": 1}}) == {"env.what_": "1"}


def test_secret_names_are_name_parts_ending_in_the_secret_words():
    for name in ("HF_TOKEN", "api_key", "wandbApiKey", "DB_PASSWORD", "clientsecret", "AWS_SECRET_ACCESS_KEY"):
        assert is_secret_name(name), name
    for name in ("tokenizer_path", "tokens_per_s", "keep_last", "tokenizer_vocab_size", "num_layers"):
        assert not is_secret_name(name), name


def test_redact_hides_secret_keys_and_secret_env_values_anywhere():
    env = {"HF_TOKEN": "hf_abcdef123", "HOME": "/root"}
    cfg = {"cluster": {"env": {"WANDB_API_KEY": "sk-1", "HUB": "use hf_abcdef123", "EMPTY_TOKEN": ""}},
           "data": {"tokenizer_path": "/t.json"}, "list": [{"password": "p"}], "home": "/root"}
    out = redact(cfg, environ=env)
    assert out["cluster"]["env"] == {"WANDB_API_KEY": REDACTED, "HUB": f"use {REDACTED}", "EMPTY_TOKEN": ""}
    assert out["data"]["tokenizer_path"] == "/t.json" and out["list"] == [{"password": REDACTED}]
    assert out["home"] == "/root" and cfg["cluster"]["env"]["WANDB_API_KEY"] == "sk-1"  # input untouched
    assert to_params(cfg)["cluster.env.WANDB_API_KEY"] == REDACTED


def test_scrub_text_hides_assignments_and_known_values():
    text = "export HF_TOKEN=abc123456\napi_key: 'zzz'\ntokens_per_s=5\nvalue s3cr3tval here"
    out = scrub_text(text, extra_values=["s3cr3tval"], environ={})
    assert out == f"export HF_TOKEN={REDACTED}\napi_key: '{REDACTED}'\ntokens_per_s=5\nvalue {REDACTED} here"
