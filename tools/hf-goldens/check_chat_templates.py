#!/usr/bin/env python3
"""Renders the chat templates of tests/engine/tst_chat_template.cpp whose expected strings have no published copy
(Zephyr, GLM-4.1V-Thinking, Qwen2.5-VL, the GLM-V thinking template) with HF Transformers' own renderer
(transformers.utils.chat_template_utils.render_jinja_template: Jinja2 with trim_blocks and lstrip_blocks, as
apply_chat_template uses it) over the same conversations, and compares byte for byte with the test's strings.

The templates, conversations and expected strings are read from the C++ file itself, so the two cannot drift.
Run with the reference kit (../shared/hf-reference/README.md), never in CI (CI has no Transformers; the C++ test
holds the engine to the strings this script checked):

    bash ../shared/hf-reference/setup.sh
    PYTHONPATH=~/.cache/hf-reference/site /usr/bin/python3 tools/hf-goldens/check_chat_templates.py

Exit 0 when every case matches; 1 with a diff of the first mismatch otherwise.
"""
import ast
import json
import pathlib
import re
import sys

import transformers
from transformers.utils.chat_template_utils import render_jinja_template

SRC = pathlib.Path(__file__).resolve().parents[2] / "tests" / "engine" / "tst_chat_template.cpp"


def constants(text):
    """const char* const NAME = "..." "..."; -> {NAME: decoded string} (C escapes decoded)."""
    out = {}
    for m in re.finditer(r'const char\* const (\w+) =\s*((?:"(?:[^"\\]|\\.)*"\s*)+);', text):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        out[m.group(1)] = "".join(ast.literal_eval('"' + p + '"') for p in parts)
    return out


def main():
    c = constants(SRC.read_text(encoding="utf-8"))
    conv = lambda name: json.loads(c[name])  # noqa: E731
    v1 = conv("kConvV1")
    t4 = conv("kConvT4")
    # (label, template, messages, add_generation_prompt, extra variables, bos, eos, expected): the C++ calls in
    # zephyrTinyLlama(), glm41vThinking(), qwen25vl() and glmVisionThinking(), one for one.
    cases = [
        ("zephyr z", "kZephyr", conv("kConvZ"), True, {}, "<s>", "</s>", "kExpect_zephyr_z"),
        ("zephyr z nogen", "kZephyr", conv("kConvZ"), False, {}, "<s>", "</s>", "kExpect_zephyr_z_nogen"),
        ("glm41v v1", "kGlm41v", v1, True, {}, "", "", "kExpect_glm41v_v1"),
        ("glm41v v2", "kGlm41v", conv("kConvV2"), True, {}, "", "", "kExpect_glm41v_v2"),
        ("qwen25vl v1", "kQwen25vl", v1, True, {}, "", "", "kExpect_qwen25vl_v1"),
        ("qwen25vl v2 ids", "kQwen25vl", conv("kConvV2"), True, {"add_vision_id": True}, "", "", "kExpect_qwen25vl_v2_ids"),
        ("glmv v1 nothink", "kGlmv", v1, True, {"enable_thinking": False}, "", "", "kExpect_glmv_v1_nothink"),
        ("glmv v1 think", "kGlmv", v1, True, {"enable_thinking": True}, "", "", "kExpect_glmv_v1_think"),
        ("glmv v1 default", "kGlmv", v1, True, {}, "", "", "kExpect_glmv_v1_default"),
        ("glmv t4", "kGlmv", t4, True, {"enable_thinking": False}, "", "", "kExpect_glmv_t4"),
    ]
    bad = 0
    for label, tmpl, messages, gen, extra, bos, eos, want in cases:
        rendered, _ = render_jinja_template(conversations=[messages], chat_template=c[tmpl],
                                            add_generation_prompt=gen, bos_token=bos, eos_token=eos, **extra)
        got = rendered[0]
        ok = got == c[want]
        print(f"{'ok ' if ok else 'BAD'} {label}")
        if not ok and bad == 0:
            print("  transformers:", json.dumps(got))
            print("  test expects:", json.dumps(c[want]))
        bad += not ok
    print(f"transformers {transformers.__version__}: {len(cases) - bad} of {len(cases)} cases equal")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
