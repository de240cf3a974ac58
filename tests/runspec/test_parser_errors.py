"""Invalid [tool.runspec] blocks fail with the file, the exact line and the key, in one line.

Run: .venv/bin/python -m pytest tests/runspec -q
"""

from __future__ import annotations

import pytest
from parser_support import expect_error, write


# ---- invalid blocks: file, exact line, key ----

INVALID = {
    "unknown_key_suggests": ("""
        # /// script
        # [tool.runspec]
        # name = "a"
        #
        # [tool.runspec.resources]
        # nodez = 2
        # ///
    """, 6, "tool.runspec.resources.nodez", ["unknown key 'nodez'", "did you mean 'nodes'?"]),
    "unknown_top_key_suggests": ("""
        # /// script
        # [tool.runspec]
        # imagee = "x"
        # ///
    """, 3, "tool.runspec.imagee", ["did you mean 'image'?"]),
    "unknown_pep723_key": ("""
        # /// script
        # dependancies = []
        # [tool.runspec]
        # ///
    """, 2, "dependancies", ["did you mean 'dependencies'?"]),
    "nodes_string": ("""
        #!/usr/bin/env python3
        # /// script
        # [tool.runspec]
        # name = "a"
        # [tool.runspec.resources]
        # gpus_per_node = 8
        # nodes = "two"
        # ///
    """, 7, "tool.runspec.resources.nodes", ["expected an integer >= 1, got 'two'"]),
    "nodes_bool_is_not_int": ("""
        # /// script
        # [tool.runspec.resources]
        # nodes = true
        # ///
    """, 3, "tool.runspec.resources.nodes", ["got True"]),
    "nodes_zero": ("""
        # /// script
        # [tool.runspec.resources]
        # nodes = 0
        # ///
    """, 3, "tool.runspec.resources.nodes", [">= 1, got 0"]),
    "gpus_per_node_other_string": ("""
        # /// script
        # [tool.runspec.resources]
        # gpus_per_node = "all"
        # ///
    """, 3, "tool.runspec.resources.gpus_per_node", ["'gpu'", "got 'all'"]),
    "bad_launch": ("""
        # /// script
        # [tool.runspec]
        # name = "a"
        # [tool.runspec.run]
        # cmd = "python {script}"
        # launch = "slurm-magic"
        # ///
    """, 6, "tool.runspec.run.launch", ["'slurm-magic'", "'torchrun', 'ray', 'direct'"]),
    "bad_format": ("""
        # /// script
        # [tool.runspec.config]
        # format = "toml"
        # ///
    """, 3, "tool.runspec.config.format", ["'toml'", "'omegaconf', 'yaml', 'json'"]),
    "bad_schema": ("""
        # /// script
        # [tool.runspec]
        # schema = "2"
        # ///
    """, 3, "tool.runspec.schema", ["'2'", 'schema = "1"']),
    "env_not_string": ("""
        # /// script
        # [tool.runspec]
        # [tool.runspec.env]
        # NCCL_DEBUG = "WARN"
        # NCCL_NVLS_ENABLE = 0
        # ///
    """, 5, "tool.runspec.env.NCCL_NVLS_ENABLE", ["got 0", 'NCCL_NVLS_ENABLE = "0"']),
    "env_bad_variable_name": ("""
        # /// script
        # [tool.runspec.env]
        # "MY-VAR" = "1"
        # ///
    """, 3, "tool.runspec.env.MY-VAR", ["invalid variable name 'MY-VAR'"]),
    "empty_config_dir": ("""
        # /// script
        # [tool.runspec.config]
        # dir = ""
        # ///
    """, 3, "tool.runspec.config.dir", ["non-empty"]),
    "cmd_unknown_placeholder": ("""
        # /// script
        # [tool.runspec.run]
        # cmd = "python {script} --nodes {nodes}"
        # ///
    """, 3, "tool.runspec.run.cmd", ["{nodes}", "{script} and {config}"]),
    "bad_name": ("""
        # /// script
        # [tool.runspec]
        # name = "nano3 pretrain"
        # ///
    """, 3, "tool.runspec.name", ["'nano3 pretrain'"]),
    "dotted_key_line": ("""
        # /// script
        # [tool.runspec]
        # name = "a"
        # resources.nodes = "x"
        # ///
    """, 4, "tool.runspec.resources.nodes", ["got 'x'"]),
    "inline_table_line": ("""
        # /// script
        # [tool.runspec]
        # name = "a"
        # resources = { gpus_per_node = 8, nodes = -1 }
        # ///
    """, 4, "tool.runspec.resources.nodes", ["got -1"]),
    "subtable_not_a_table": ("""
        # /// script
        # [tool.runspec]
        # run = "torchrun"
        # ///
    """, 3, "tool.runspec.run", ["expected a table"]),
    "table_text_inside_setup_string_is_not_a_table": ("""
        # /// script
        # [tool.runspec]
        # setup = \"\"\"
        # [tool.runspec.resources]
        # nodes = 1
        # \"\"\"
        # [tool.runspec.resources]
        # nodes = "many"
        # ///
    """, 8, "tool.runspec.resources.nodes", ["got 'many'"]),
    "unterminated_block": ("""
        #!/usr/bin/env python3
        # /// script
        # [tool.runspec]
        # name = "a"
    """, 2, "# /// script", ["unterminated", "'# ///'"]),
    "code_inside_block": ("""
        # /// script
        # [tool.runspec]
        # name = "a"
        import os
        # ///
    """, 4, "# /// script", ["'import os'"]),
    "two_blocks": ("""
        # /// script
        # [tool.runspec]
        # ///
        x = 1
        # /// script
        # [tool.runspec]
        # ///
    """, 5, "# /// script", ["second", "line 1"]),
    "toml_syntax_error": ("""
        #!/usr/bin/env python3
        # /// script
        # [tool.runspec]
        # name = "a"
        # image = nvcr.io/nvidia/nemo
        # ///
    """, 5, "tool.runspec.image", ["TOML syntax error at column 9"]),
    "toml_error_off_a_key_line": ("""
        # /// script
        # [tool.runspec]
        # name = "a"
        # [tool.runspec.env
        # ///
    """, 4, "toml", ["TOML syntax error", "']'"]),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_block_names_file_line_and_key(tmp_path, case):
    text, line, key, fragments = INVALID[case]
    expect_error(write(tmp_path / "recipe.py", text), line, key, *fragments)


def test_error_line_counts_lines_before_the_block(tmp_path):
    header = "".join(f"# comment {i}\n" for i in range(10)) + "import os\n\n"
    script = tmp_path / "late.py"
    script.write_text(header + '# /// script\n# [tool.runspec.run]\n# launch = "slurm"\n# ///\n')
    expect_error(script, 15, "tool.runspec.run.launch", "'slurm'")

