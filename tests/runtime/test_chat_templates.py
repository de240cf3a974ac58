"""Chat templates render exactly as Hugging Face transformers renders them, and our loss masks are
`return_assistant_tokens_mask`'s, on real-world-shaped templates (ChatML-like with multi-line
blocks, Llama-3-like with `{% set %}` and loop controls, tool calling, one that raises).

Each tokenizer is trained here with `tokenizers` and saved with `save_pretrained` (no hub); our side
reads the saved directory as data prep does (template, special tokens, tokenizer.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemotron.runtime.prep import chat

CHATML = """{% for message in messages %}
{% if loop.first and message['role'] != 'system' %}
<|im_start|>system
You are a helpful assistant.<|im_end|>
{% endif %}
{% if message['role'] == 'assistant' %}
<|im_start|>assistant
{% generation %}
{{ message['content'] }}<|im_end|>
{% endgeneration %}
{% else %}
<|im_start|>{{ message['role'] }}
{{ message['content'] }}<|im_end|>
{% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}
"""

SHORT = """{% for m in messages %}
{% if m.role == 'user' %}
<|user|>{{ m.content }}
{% elif m.role == 'assistant' %}
<|assistant|>{% generation %}{{ m.content }}{{ eos_token }}{% endgeneration %}
{% endif %}
{% endfor %}
"""
"""The issue's example: transformers renders '<|user|>hi\\n<|assistant|>yo</s>'."""

LLAMA3 = """{{- bos_token }}
{%- set ns = namespace(system='') %}
{%- for message in messages %}
    {%- if message['role'] == 'system' %}
        {%- set ns.system = message['content'] | trim %}
        {%- continue %}
    {%- endif %}
    {%- if loop.index0 > 6 %}{% break %}{% endif %}
    {%- if ns.system and loop.index0 == 1 %}
        {{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + ns.system + '<|eot_id|>' }}
    {%- endif %}
    {%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' %}
    {{- content }}
    {%- if message['role'] == 'assistant' %}
        {%- generation %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endgeneration %}
    {%- else %}
        {{- message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
"""

TOOLS = """{%- if tools %}
<|im_start|>system
# Tools
<tools>
{% for tool in tools %}
{{ tool | tojson }}
{% endfor %}
</tools><|im_end|>
{% endif %}
{% for message in messages %}
{% if message.role == 'assistant' %}
<|im_start|>assistant
{% generation %}
{% if message.content %}{{ message.content }}{% endif %}
{% for call in message.tool_calls | default([]) %}
<tool_call>
{{ {'name': call.function.name, 'arguments': call.function.arguments} | tojson }}
</tool_call>
{% endfor %}
<|im_end|>
{% endgeneration %}
{% elif message.role == 'tool' %}
<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% else %}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{% endfor %}
"""

STRICT = """{%- for message in messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {{- '[INST] ' + message['content'] + ' [/INST]' }}
    {%- else %}
        {{- ' ' }}{% generation %}{{- message['content'] + eos_token }}{% endgeneration %}
    {%- endif %}
{%- endfor %}
"""
"""Mistral-like: refuses a system message or two turns of one role; the answer follows a space."""

SYSTEM = {"role": "system", "content": "  Be brief.  "}
TALK = [
    {"role": "user", "content": "hi there"},
    {"role": "assistant", "content": "hello, how can I help?"},
    {"role": "user", "content": "what is 2 + 2?"},
    {"role": "assistant", "content": "It is 4."},
]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city <today>",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TOOL_CHAT = [
    {"role": "user", "content": "Weather in Paris & Zürich?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich"}}},
        ],
    },
    {"role": "tool", "name": "get_weather", "content": '{"temp": 21}'},
    {"role": "tool", "name": "get_weather", "content": '{"temp": 17}'},
    {"role": "assistant", "content": "Paris 21, Zürich 17."},
]
SPECIALS = ["<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def hf_tokenizer(tmp_path: Path, template: str):
    """A byte-level BPE trained here, wrapped and saved as a transformers tokenizer directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [json.dumps(m) for m in [*TALK, *TOOL_CHAT, WEATHER]] + [template]
    tok.train_from_iterator(corpus * 20, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", chat_template=template)
    path = tmp_path / "tok"
    hf.save_pretrained(str(path))
    return hf, str(path / "tokenizer.json")


def ours(tokenizer_json: str, messages, tools=None):
    """(text, ids, mask) as SFT prep makes them from the saved directory."""
    from tokenizers import Tokenizer

    template, origin = chat.template_source(None, tokenizer_json)
    renderer = chat.ChatRenderer(template, "</s>", origin, chat.template_tokens(tokenizer_json, "</s>"))
    rendered = renderer.render(messages, "chats.jsonl:1", tools)
    enc = Tokenizer.from_file(tokenizer_json).encode(rendered.text, add_special_tokens=False)
    return rendered.text, enc.ids, chat.token_mask(enc.offsets, rendered.spans).tolist()


def theirs(hf, messages, tools=None):
    text = hf.apply_chat_template(messages, tools=tools, tokenize=False)
    out = hf.apply_chat_template(messages, tools=tools, return_dict=True, return_assistant_tokens_mask=True)
    return text, list(out["input_ids"]), list(out["assistant_masks"])


CASES = {
    "chatml": (CHATML, TALK, None),
    "chatml-with-system": (CHATML, [SYSTEM, *TALK], None),
    "short": (SHORT, TALK[:2], None),
    "llama3": (LLAMA3, [SYSTEM, *TALK, *TALK], None),
    "tools": (TOOLS, TOOL_CHAT, [WEATHER]),
    "tools-without-tools-list": (TOOLS, TOOL_CHAT, None),
    "strict": (STRICT, TALK, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_ids_and_mask_equal_apply_chat_template(tmp_path, name):
    template, messages, tools = CASES[name]
    hf, path = hf_tokenizer(tmp_path, template)
    text, ids, mask = ours(path, chat.checked_messages(messages, "chats.jsonl:1"), tools)
    want_text, want_ids, want_mask = theirs(hf, messages, tools)
    assert text == want_text
    assert ids == want_ids
    assert mask == want_mask
    assert 0 < sum(mask) < len(mask)  # the comparison is not vacuous
    for turn in (m for m in messages if m["role"] == "assistant" and m.get("content")):
        assert turn["content"].strip() in hf.decode([i for i, m in zip(ids, mask, strict=True) if m])


def test_the_issue_example_renders_as_transformers_and_not_as_plain_jinja(tmp_path):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    hf, path = hf_tokenizer(tmp_path, SHORT)
    assert ours(path, messages)[0] == "<|user|>hi\n<|assistant|>yo</s>" == theirs(hf, messages)[0]
    plain = SHORT.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    old = ImmutableSandboxedEnvironment(keep_trailing_newline=True).from_string(plain)  # the old environment
    assert old.render(messages=messages, eos_token="</s>").startswith("\n\n<|user|>hi\n\n\n\n<|assistant|>yo</s>\n\n")


def test_the_mask_rule_is_overlap_not_first_character(tmp_path):
    """STRICT's answers follow a space: the byte-level token ' It' starts outside the generation block
    and overlaps it. transformers counts it; a first-character rule would not."""
    hf, path = hf_tokenizer(tmp_path, STRICT)
    text, ids, mask = ours(path, TALK)
    assert mask == theirs(hf, TALK)[2]
    first_char = []
    template = chat.template_source(None, path)[0]
    renderer = chat.ChatRenderer(template, "</s>", "t", chat.template_tokens(path, "</s>"))
    spans = renderer.render(TALK, "x").spans
    from tokenizers import Tokenizer

    for start, _ in Tokenizer.from_file(path).encode(text, add_special_tokens=False).offsets:
        first_char.append(int(any(s <= start < e for s, e in spans)))
    assert first_char != mask


def test_raise_exception_is_one_line_naming_the_line_and_the_template_message(tmp_path):
    _, path = hf_tokenizer(tmp_path, STRICT)
    with pytest.raises(chat.ChatDataError) as err:
        ours(path, [TALK[0], TALK[0]])
    message = str(err.value)
    assert message.startswith("chats.jsonl:1: the chat template (")
    assert "Conversation roles must alternate user/assistant" in message and "\n" not in message


def test_loop_controls_compile_and_a_broken_template_is_refused_in_one_line():
    chat.ChatRenderer("{% for m in messages %}{% break %}{% endfor %}", "</s>")
    with pytest.raises(chat.ChatDataError, match=r"chat template \(data.chat_template\) does not compile"):
        chat.ChatRenderer("{% for m in messages %}", "</s>")


def test_check_template_probes_without_a_system_message_when_the_template_refuses_one():
    chat.check_template(chat.ChatRenderer(STRICT, "</s>"))


def test_tool_lines_parse_with_tools_and_count_as_assistant_turns():
    line = json.dumps({"messages": TOOL_CHAT[:2], "tools": [WEATHER]})
    conversation = chat.parse_chat(line, "f.jsonl:3")
    assert conversation.tools == [WEATHER]
    assert conversation.messages[1] == {k: v for k, v in TOOL_CHAT[1].items() if v is not None}
    assert chat.has_assistant(conversation.messages)  # tool calls without content are a turn to learn
    assert chat.parse_chat(json.dumps(TALK), "f.jsonl:4").messages == TALK  # a bare list of messages
    both = {"prompt": TALK[:1], "completion": TALK[1:2]}
    assert chat.parse_chat(json.dumps(both), "f.jsonl:5").messages == TALK[:2]


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0] has role 'robot'"),
        ({"messages": [{"role": "user"}]}, "messages[0] needs `content`"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "only assistant messages call tools"),
        ({"messages": [{"role": "assistant", "tool_calls": "f()"}]}, "tool_calls is not a list of objects"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content is a int"),
        ({"messages": [], "tools": '[{"name": "f"}]'}, "`tools` is a str"),
    ],
)
def test_bad_tool_lines_are_refused_naming_file_line_and_reason(record, reason):
    with pytest.raises(chat.ChatDataError) as err:
        chat.parse_chat(json.dumps(record), "f.jsonl:9")
    assert str(err.value).startswith("f.jsonl:9: ") and reason in str(err.value)


def test_parsing_loads_no_transformers():
    """The SFT training side imports this module; only building a renderer loads transformers."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom nemotron.runtime.prep import chat\n"
        'chat.parse_chat(\'{"messages": [{"role": "tool", "content": "x"}]}\', \'w\')\n'
        "print(any(m.split('.')[0] == 'transformers' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
