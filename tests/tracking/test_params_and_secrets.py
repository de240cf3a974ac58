"""Config -> MLflow params (flattening, MLflow's limits) and secret redaction, without a server."""

from __future__ import annotations

from nemotron.tracking.params import MAX_PARAM_VALUE_LEN, flatten, safe_key, to_params, to_tags, truncate
from nemotron.tracking.secrets import REDACTED, is_secret_name, redact, reference_secrets, run_secrets, scrub_text


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


def test_secret_names_are_env_style_names_whose_last_part_is_a_secret_word():
    for name in ("HF_TOKEN", "API_KEY", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "TOKEN", "GCP_CREDENTIALS",
                 "cluster.env.WANDB_API_KEY", "FTP_PASSWD", "CLIENT_SECRET"):
        assert is_secret_name(name), name
    for name in ("data.text_key", "eod_token", "text_key", "api_key", "tokenizer_path", "tokens_per_s",
                 "KEY_FILE", "TOKENIZER", "HF_TOKEN_PATH", "num_layers", "MY_CREDS"):
        assert not is_secret_name(name), name
    assert is_secret_name("MY_CREDS", extra=["MY_CREDS"]) and is_secret_name("cluster.env.MY_CREDS", ["MY_CREDS"])


def test_plain_settings_named_like_key_or_token_are_not_redacted():
    cfg = {"data": {"text_key": "text", "eod_token": "<eos>"}, "cluster": {"secret_names": ["MY_CREDS"],
                                                                      "env": {"MY_CREDS": "u:p-long-creds"}}}
    out = redact(cfg, environ={})
    assert out["data"] == {"text_key": "text", "eod_token": "<eos>"}
    assert out["cluster"]["env"]["MY_CREDS"] == REDACTED
    assert to_params(cfg)["data.text_key"] == "text"


def test_reference_secrets_leaves_env_references_the_job_resolves():
    cfg = {"cluster": {"env": {"DB_PASSWORD": "pw", "HUB": "use hf_abcdef123"}}, "note": "hf_abcdef123"}
    secrets = run_secrets(cfg, environ={"HF_TOKEN": "hf_abcdef123", "UNUSED_TOKEN": "zzzzzzzzzz"})
    assert secrets == {"DB_PASSWORD": "pw", "HF_TOKEN": "hf_abcdef123"}
    out = reference_secrets(cfg, secrets)
    assert out == {"cluster": {"env": {"DB_PASSWORD": "${oc.env:DB_PASSWORD}", "HUB": "use ${oc.env:HF_TOKEN}"}},
                   "note": "${oc.env:HF_TOKEN}"}


def test_redact_hides_secret_keys_and_secret_env_values_anywhere():
    env = {"HF_TOKEN": "hf_abcdef123", "HOME": "/root"}
    cfg = {"cluster": {"env": {"WANDB_API_KEY": "sk-1", "HUB": "use hf_abcdef123", "EMPTY_TOKEN": ""}},
           "data": {"tokenizer_path": "/t.json"}, "list": [{"PASSWORD": "p"}], "home": "/root"}
    out = redact(cfg, environ=env)
    assert out["cluster"]["env"] == {"WANDB_API_KEY": REDACTED, "HUB": f"use {REDACTED}", "EMPTY_TOKEN": ""}
    assert out["data"]["tokenizer_path"] == "/t.json" and out["list"] == [{"PASSWORD": REDACTED}]
    assert out["home"] == "/root" and cfg["cluster"]["env"]["WANDB_API_KEY"] == "sk-1"  # input untouched
    assert to_params(cfg)["cluster.env.WANDB_API_KEY"] == REDACTED


def test_scrub_text_hides_assignments_and_known_values():
    text = "export HF_TOKEN=abc123456\n- +cluster.env.API_KEY='zzz'\ntokens_per_s=5\nvalue s3cr3tval here\ntext_key: t"
    out = scrub_text(text, extra_values=["s3cr3tval"], environ={})
    assert out == (f"export HF_TOKEN={REDACTED}\n- +cluster.env.API_KEY='{REDACTED}'\ntokens_per_s=5\n"
                   f"value {REDACTED} here\ntext_key: t")


def test_a_uri_password_is_hidden_when_shown_and_travels_in_its_own_variable(monkeypatch):
    """`scheme://user:password@host` (a tracking server's basic auth, a database store's login): shown
    nowhere, whatever its length; config.yaml references NEMOTRON_<KEY>_PASSWORD, which the job gets."""
    from omegaconf import OmegaConf

    from nemotron.tracking.secrets import hide_uri_passwords

    cfg = {"tracker": {"uri": "http://alice:pw@127.0.0.1:5000"}, "db": ["postgresql://bob:s3cret-db@h/db"],
           "plain": "http://127.0.0.1:5000", "ref": "http://u:${oc.env:PW_TOKEN}@h"}
    shown = scrub_text("uri http://alice:pw@127.0.0.1:5000 ok", environ={})
    assert shown == f"uri http://alice:{REDACTED}@127.0.0.1:5000 ok"
    assert redact(cfg, environ={})["tracker"]["uri"] == f"http://alice:{REDACTED}@127.0.0.1:5000"
    assert hide_uri_passwords(cfg["ref"]) == cfg["ref"] and hide_uri_passwords(cfg["plain"]) == cfg["plain"]
    secrets = run_secrets(cfg, environ={})
    assert secrets == {"NEMOTRON_TRACKER_URI_PASSWORD": "pw", "NEMOTRON_DB_0_PASSWORD": "s3cret-db"}
    out = reference_secrets(cfg, secrets)
    assert out["tracker"]["uri"] == "http://alice:${oc.env:NEMOTRON_TRACKER_URI_PASSWORD}@127.0.0.1:5000"
    assert out["db"] == ["postgresql://bob:${oc.env:NEMOTRON_DB_0_PASSWORD}@h/db"] and out["plain"] == cfg["plain"]
    assert all(is_secret_name(name) for name in secrets)  # the job hides them in what it logs too
    for name, value in secrets.items():  # the job's environment
        monkeypatch.setenv(name, value)
    job = OmegaConf.create(out)
    assert job.tracker.uri == cfg["tracker"]["uri"] and job.db[0] == cfg["db"][0]


def test_sync_puts_a_hidden_uri_password_back_from_its_variable(monkeypatch):
    """state.json records the tracking URI with its password hidden; `sync` restores it from the variable
    the run got it in, when the shell has it (else the URI stays as recorded)."""
    from nemotron.tracking.cli import with_uri_password

    hidden = f"http://alice:{REDACTED}@h:5000"
    monkeypatch.delenv("NEMOTRON_TRACKER_URI_PASSWORD", raising=False)
    assert with_uri_password(hidden) == hidden
    monkeypatch.setenv("NEMOTRON_TRACKER_URI_PASSWORD", "pw")
    assert with_uri_password(hidden) == "http://alice:pw@h:5000"
    assert with_uri_password("http://h:5000") == "http://h:5000" and with_uri_password(None) is None
