#!/usr/bin/env python3
"""Goldens for the GLM-4 / GLM-4.1V engine path, made with Hugging Face Transformers' own classes.

Builds tiny random-weight Glm4ForCausalLM and Glm4vForConditionalGeneration checkpoints with Transformers' classes
and saves them as the engine reads them (config.json, generation_config.json, safetensors - the vision model
sharded with an index -, tokenizer.json + tokenizer_config.json + chat template, preprocessor_config.json). Then it
runs Transformers' tokenizer, image processor, Glm4vProcessor and the models on fixed inputs and writes
goldens.json next to the checkpoints. tests/engine/tst_model_glm.cpp (goldens()) holds the engine to them and
skips while they are absent.

Nothing is downloaded: the tokenizer is a byte-level BPE built in memory with the `tokenizers` library (ids 0-255
are the bytes, 256.. GLM's special tokens, as engine/glm/glm_tiny.cpp lays them out), the models are random. Every
computation runs on the CPU in float32 with eager attention, also on a machine with a GPU.

goldens.json:
  processor[]         image processor alone on procedural images (an integer formula that the C++ test repeats):
                      name, width, height, variant, min_pixels, max_pixels, grid_thw [t,h,w], shape [patches, dim],
                      sum, abs_sum, first_values (the first 16 values of patch row 0), row_sums ({rows: 9 evenly
                      spaced patch rows, sums: the sum of each})
  fixture_processor[] the same for the photo $WB_FIXTURES_DIR/images/llama_cute.jpg: "fixture" (path relative to
                      the fixtures folder) instead of "variant", plus rgb_sum (byte sum of the decoded RGB pixels)
  models[]            name, checkpoint (folder beside goldens.json), messages (as the chat template saw them; image
                      parts {"type": "image"} in the order of images[]), enable_thinking (when passed), prompt
                      (the rendered text the tokenizer saw, image markers included, before image-token
                      expansion), input_ids (after expansion), images[]
                      ({width, height, variant, grid_thw}), position_ids (3 rows: temporal, height, width, as the
                      model used them), rope_delta, logits[] ({position (negative: from the end), values [vocab]}),
                      greedy (16 argmax tokens after the prompt, full-recompute, ids in greedy_excluded masked),
                      bf16 (some cases: Transformers in bfloat16, weights and activations: logits at the same
                      positions, greedy, max_abs_diff_from_float32)
  fixture_models[]    the same for a prompt with the photo: images[] entries carry "fixture" and rgb_sum instead of
                      "variant" (kept apart so that a consumer that only knows procedural images is not confused)
  png16[]             16-bit PNGs written beside goldens.json (gray16.png, rgb16.png): file, width, height,
                      channels, values (the 16-bit samples, row-major), pillow_mode, pillow_rgb (Pillow's
                      convert("RGB") bytes, as the image processor gets them)
  top level           logit_tolerance, greedy_excluded, tokens (name -> id), checkpoint_processor, versions,
                      image_processor (class and backend), hf_processor, notes[], problems[]
  provenance          generator, script_commit (the last commit that changed this script), script_sha256,
                      script_modified (true when run from an uncommitted edit), transformers_version, torch_version,
                      python/numpy/Pillow versions

Needs torch, transformers (with Glm4v; 4.5x or 5.x), tokenizers, Pillow and numpy; no GPU. The committed goldens in
tests/goldens/glm were made with the reference kit in ../shared/hf-reference (README there): Transformers
4.57.0.dev0 on Debian 12's CPU PyTorch 1.13, no PyPI. Use Debian's /usr/bin/python3 (another python3 on PATH may not
see Debian's torch); every model is built with attn_implementation="eager" (torch 1.13 has no
scaled_dot_product_attention), and the Glm4v forward gets an all-ones attention_mask (without one, 4.57's masking
code fails with use_cache=False). From the repository root:
    bash ../shared/hf-reference/setup.sh        # once: into ~/.cache/hf-reference
    PYTHONPATH=~/.cache/hf-reference/site /usr/bin/python3 tools/hf-goldens/make_glm_goldens.py \\
        [--out tests/goldens/glm] [--fixtures ../shared/fixtures] [--tar /some/where/glm-goldens.tgz]
The output is deterministic (fixed seeds, CPU float32): run twice, `diff -r` finds nothing; from a clean checkout
it regenerates the committed tests/goldens/glm bit for bit. Commit a script change first, then regenerate and commit
the goldens, so that script_commit names the script that made them.
Exit status: 0 all checks passed; 2 everything was written but a self-check failed (listed at the end and in
goldens.json "problems"); 1 it could not finish. Total output is about 2 MB.
"""
import argparse
import copy
import hashlib
import importlib
import inspect
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import traceback

import numpy as np
import torch
from PIL import Image

import transformers
from transformers import Glm4Config, Glm4ForCausalLM, Glm4vConfig, Glm4vForConditionalGeneration

# ---- vocabulary -------------------------------------------------------------------------------------------------
VOCAB = 300  # model vocab_size; the tokenizer has 270 entries, the rest are unused rows
# Ids 256.. in this order, as engine/glm/glm_tiny.cpp writes its tiny tokenizer (<|video|> added at the end for
# Glm4vProcessor, which looks it up). <think> and </think> are ordinary added tokens in GLM's tokenizer.
ADDED_TOKENS = [
    ("[gMASK]", True), ("<sop>", True), ("<|system|>", True), ("<|user|>", True), ("<|assistant|>", True),
    ("<|endoftext|>", True), ("<|begin_of_image|>", True), ("<|end_of_image|>", True), ("<|image|>", True),
    ("<|begin_of_video|>", True), ("<|end_of_video|>", True), ("<think>", False), ("</think>", False),
    ("<|video|>", True),
]
TOKEN_ID = {text: 256 + i for i, (text, _) in enumerate(ADDED_TOKENS)}
GMASK, SOP, SYSTEM, USER, ASSISTANT, EOT = (TOKEN_ID[t] for t in (
    "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>"))
IMAGE_START, IMAGE_END, IMAGE = TOKEN_ID["<|begin_of_image|>"], TOKEN_ID["<|end_of_image|>"], TOKEN_ID["<|image|>"]
VIDEO_START, VIDEO_END, VIDEO = (TOKEN_ID["<|begin_of_video|>"], TOKEN_ID["<|end_of_video|>"],
                                 TOKEN_ID["<|video|>"])
EOS_IDS = [EOT, USER]  # as GLM's generation_config.json: <|endoftext|>, <|user|>
# Masked in the greedy argmax (and suppressed in the generate() cross-check): a random model could otherwise
# "generate" an image marker, or stop early on an end token.
EXCLUDED = sorted([IMAGE_START, IMAGE_END, IMAGE, VIDEO_START, VIDEO_END, VIDEO] + EOS_IDS)
GREEDY_STEPS = 16
LOGIT_TOLERANCE = 1e-4  # float32 logits, engine vs Transformers: measured up to 9e-6 (tiny models, logits spread 6-9)

# Same text as tinyGlmChatTemplate() in engine/glm/glm_tiny.cpp (GLM-4.1V's layout, images as
# <|begin_of_image|><|image|><|end_of_image|>).
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{%- for m in messages -%}"
    "{%- if m.role == 'system' -%}<|system|>{{ '\\n' }}{{ m.content }}"
    "{%- elif m.role == 'user' -%}<|user|>{{ '\\n' }}"
    "{%- if m.content is string -%}{{ m.content }}"
    "{%- else -%}{%- for part in m.content -%}"
    "{%- if part.type == 'image' -%}<|begin_of_image|><|image|><|end_of_image|>"
    "{%- elif part.type == 'text' -%}{{ part.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- elif m.role == 'assistant' -%}<|assistant|>{{ '\\n' }}{{ m.content }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{{ '\\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking -%}<think></think>{%- endif -%}"
    "{%- endif -%}")

# ---- model sizes (those of engine/glm/glm_tiny.cpp) ---------------------------------------------------------------
HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, LAYERS = 64, 4, 2, 16, 96, 2
PARTIAL_ROTARY = 0.5  # rotary dim 8 of the 16-dim heads
MROPE_SECTION = [2, 1, 1]  # sums to rotary dim / 2
VISION = dict(depth=2, hidden_size=32, num_heads=2, patch_size=14, temporal_patch_size=2, spatial_merge_size=2,
              in_channels=3, image_size=56, out_hidden_size=HIDDEN, intermediate_size=48, rms_norm_eps=1e-5,
              hidden_act="silu", attention_bias=False)
GLM41V_PIXELS = (12544, 9633792)  # GLM-4.1V-9B-Thinking's preprocessor_config.json size {shortest, longest}_edge
# The tiny checkpoint's budget: the procedural images keep their size class, the 1024x1024 photo is scaled down to
# 476x476 (289 image tokens) rather than 1036x1036 (1369).
CHECKPOINT_PIXELS = (12544, 500000)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
PHOTO = "images/llama_cute.jpg"

NOTES, PROBLEMS = [], []


def log(*a):
    print(*a, flush=True)


def note(msg):
    NOTES.append(msg)
    log("note:", msg)


def problem(msg):
    PROBLEMS.append(msg)
    log("PROBLEM:", msg)


def fatal(msg):
    raise SystemExit("make_glm_goldens.py: FATAL: " + msg)


def attempt(label, fn, *args, **kwargs):
    """fn(...), or None with a problem: one failing case does not cost the others."""
    try:
        return fn(*args, **kwargs)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        problem(f"{label}: {type(e).__name__}: {e}")
        return None


# ---- inputs -----------------------------------------------------------------------------------------------------
def procedural_image(width, height, variant):
    """Must match procedural() in tests/engine/tst_model_glm.cpp."""
    x = np.arange(width, dtype=np.int64)[None, :]
    y = np.arange(height, dtype=np.int64)[:, None]
    r = (x * 7 + y * 3 + variant * 50) % 256
    g = (x * y + variant * 17) % 251
    b = (((x // 8) ^ (y // 8)) * 16) % 256
    rgb = np.ascontiguousarray(np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8))
    img = Image.fromarray(rgb)  # HxWx3 uint8 -> RGB (the mode argument is deprecated in recent Pillow)
    if img.mode != "RGB" or img.size != (width, height):
        fatal(f"procedural image came out {img.mode} {img.size}")
    return img


def load_photo(fixtures_dir):
    """The photo fixture as RGB, with what identifies it; None (and a problem) when it is missing."""
    path = os.path.join(fixtures_dir, PHOTO) if fixtures_dir else None
    if not path or not os.path.isfile(path):
        problem(f"photo fixture {PHOTO} not found under {fixtures_dir!r}: set WB_FIXTURES_DIR (or --fixtures) to "
                "the shared fixtures folder; the photo goldens are missing")
        return None
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    img = Image.open(path)
    img.load()
    img = img.convert("RGB")
    rgb_sum = int(np.asarray(img, dtype=np.uint64).sum())
    log(f"photo {path}: {img.size[0]}x{img.size[1]}, RGB byte sum {rgb_sum}")
    return {"image": img, "fixture": PHOTO, "width": img.size[0], "height": img.size[1], "rgb_sum": rgb_sum,
            "sha256": sha}


def render_prompt(messages, add_generation_prompt=True, enable_thinking=None):
    """CHAT_TEMPLATE's result, written out by hand (cross-checked with the tokenizer's apply_chat_template)."""
    out = "[gMASK]<sop>"
    for m in messages:
        if m["role"] == "system":
            out += "<|system|>\n" + m["content"]
        elif m["role"] == "user":
            out += "<|user|>\n"
            if isinstance(m["content"], str):
                out += m["content"]
            else:
                for part in m["content"]:
                    if part["type"] == "image":
                        out += "<|begin_of_image|><|image|><|end_of_image|>"
                    elif part["type"] == "text":
                        out += part["text"]
        elif m["role"] == "assistant":
            out += "<|assistant|>\n" + m["content"]
    if add_generation_prompt:
        out += "<|assistant|>\n"
        if enable_thinking is False:
            out += "<think></think>"
    return out


def template_check(tok, name, messages, prompt, enable_thinking):
    """The tokenizer's own apply_chat_template must render what render_prompt wrote."""
    kw = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    try:
        rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kw)
    except Exception as e:  # noqa: BLE001
        problem(f"{name}: apply_chat_template failed ({type(e).__name__}: {e})")
        return
    if rendered != prompt:
        problem(f"{name}: the tokenizer's chat template renders {rendered!r}, expected {prompt!r}")


def case_inputs(messages, enable_thinking):
    """What a consumer needs to build the same prompt itself: the messages as the template saw them (image parts
    are {"type": "image"}, in the order of the case's images[]) and enable_thinking (absent: not passed)."""
    out = {"messages": messages}
    if enable_thinking is not None:
        out["enable_thinking"] = enable_thinking
    return out


def png16(path, width, height, channels, values):
    """A 16-bit PNG (grey: colour type 0, RGB: 2) written by hand: Pillow cannot write 16-bit RGB."""
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b""
    for y in range(height):
        row = values[y * width * channels:(y + 1) * width * channels]
        raw += b"\x00" + b"".join(struct.pack(">H", v) for v in row)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16,
                                                                 0 if channels == 1 else 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def png16_cases(out):
    """16-bit PNGs through Pillow as Transformers' image processors see them (Image.open + convert("RGB")): grey
    is opened as a 32-bit integer image and clamped to 0..255 (nearly white), RGB keeps the high byte."""
    cases = []
    w, h = 8, 4
    for name, channels in (("gray16.png", 1), ("rgb16.png", 3)):
        values = [(i * 9001 + 77) & 0xFFFF for i in range(w * h * channels)]
        path = os.path.join(out, name)
        png16(path, w, h, channels, values)
        img = Image.open(path)
        img.load()
        mode = img.mode
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8).reshape(-1)
        cases.append({"file": name, "width": w, "height": h, "channels": channels, "values": values,
                      "pillow_mode": mode, "pillow_rgb": [int(v) for v in rgb]})
        log(f"{name}: Pillow opens it as {mode}, RGB {list(rgb[:6])}...")
    return cases


# ---- tokenizer --------------------------------------------------------------------------------------------------
def bytes_to_unicode():
    """GPT-2's byte -> printable character map (the ByteLevel pre-tokenizer's alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def reference_ids(text):
    """What the tiny tokenizer must give: added tokens where their text appears, every other byte its own id."""
    by_length = sorted(TOKEN_ID, key=len, reverse=True)
    out, i = [], 0
    while i < len(text):
        for t in by_length:
            if text.startswith(t, i):
                out.append(TOKEN_ID[t])
                i += len(t)
                break
        else:
            out.extend(text[i].encode("utf-8"))
            i += 1
    return out


def build_tokenizer():
    """A byte-level BPE tokenizer built in memory (no merges: every byte is a token), wrapped for Transformers."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    try:
        from transformers import PreTrainedTokenizerFast  # 5.x keeps the name for TokenizersBackend
    except ImportError:
        from transformers import TokenizersBackend as PreTrainedTokenizerFast

    b2u = bytes_to_unicode()
    tk = Tokenizer(models.BPE(vocab={b2u[b]: b for b in range(256)}, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    for text, special in ADDED_TOKENS:  # one at a time so that the ids follow the list
        tok = AddedToken(text, single_word=False, lstrip=False, rstrip=False, normalized=False, special=special)
        if special:
            tk.add_special_tokens([tok])
        else:
            tk.add_tokens([tok])
        if tk.token_to_id(text) != TOKEN_ID[text]:
            fatal(f"tokenizers gave {text!r} id {tk.token_to_id(text)}, expected {TOKEN_ID[text]}")
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    for text in TOKEN_ID:
        if fast.convert_tokens_to_ids(text) != TOKEN_ID[text]:
            fatal(f"{type(fast).__name__} maps {text!r} to {fast.convert_tokens_to_ids(text)}")
    sample = "[gMASK]<sop><|user|>\nh\u00e9llo <think>?</think><|assistant|>\n"
    got = fast(sample, add_special_tokens=False)["input_ids"]
    if list(got) != reference_ids(sample):
        problem(f"tokenizer check: {sample!r} -> {list(got)}, expected {reference_ids(sample)}")
    if len(fast) != 256 + len(ADDED_TOKENS) or len(fast) > VOCAB:
        fatal(f"tokenizer has {len(fast)} entries")
    return fast


def encode(tok, text):
    ids = [int(i) for i in tok(text, add_special_tokens=False)["input_ids"]]
    want = reference_ids(text)
    if ids != want:
        problem(f"tokenizer: {text[:60]!r}... gave {ids[:40]}, expected {want[:40]}")
    return ids


def save_tokenizer(tok, folder):
    tok.save_pretrained(folder)
    check_tokenizer_files(folder)


def check_tokenizer_files(folder):
    """What engine/tokenizer/tokenizer.cpp reads: tokenizer.json (byte-level BPE, added tokens), tokenizer_config.json
    (eos_token, chat_template) or chat_template.jinja."""
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        problem(f"{path}: not written")
        return
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        problem(f"{path}: model.type is {model.get('type')!r}, the engine reads BPE only")
    b2u = bytes_to_unicode()
    vocab = model.get("vocab") or {}
    if any(vocab.get(b2u[b]) != b for b in range(256)):
        problem(f"{path}: model.vocab is not the 256 byte pieces at ids 0-255")

    def pre_ok(pt):
        if not isinstance(pt, dict):
            return False
        if pt.get("type") == "Sequence":
            return any(pre_ok(p) for p in pt.get("pretokenizers", []))
        if pt.get("type") == "Split":
            rx = (pt.get("pattern") or {}).get("Regex", "")
            if not any(k in rx for k in ("\\p{N}{1,3}", "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|", " ?\\p{L}+| ?\\p{N}+")):
                problem(f"{path}: pre_tokenizer regex {rx!r} is not one the engine knows")
            return False
        return pt.get("type") == "ByteLevel"

    if not pre_ok(tj.get("pre_tokenizer")) and (tj.get("decoder") or {}).get("type") != "ByteLevel":
        problem(f"{path}: not byte-level (pre_tokenizer {tj.get('pre_tokenizer')})")
    added = {a.get("content"): (a.get("id"), a.get("special")) for a in tj.get("added_tokens", [])}
    for text, special in ADDED_TOKENS:
        if added.get(text) != (TOKEN_ID[text], special):
            problem(f"{path}: added token {text!r} is {added.get(text)}, expected ({TOKEN_ID[text]}, {special})")
    post = tj.get("post_processor")
    if isinstance(post, dict) and "TemplateProcessing" in json.dumps(post):
        note(f"{path}: has a TemplateProcessing post-processor ({json.dumps(post)[:200]}): the engine would add its "
             "first special token as BOS")
    cfg_path = os.path.join(folder, "tokenizer_config.json")
    cfg = {}
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    else:
        problem(f"{cfg_path}: not written")
    eos = cfg.get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    if eos != "<|endoftext|>":
        problem(f"{cfg_path}: eos_token is {eos!r}")
    jinja = os.path.join(folder, "chat_template.jinja")
    if not os.path.isfile(jinja) and not cfg.get("chat_template"):
        with open(jinja, "w", encoding="utf-8") as f:
            f.write(CHAT_TEMPLATE)
        note(f"{folder}: the tokenizer saved no chat template; wrote chat_template.jinja by hand")


# ---- configs and models -----------------------------------------------------------------------------------------
def takes(cls, name):
    """Whether a config class takes `name` as a declared argument (dataclass field in 5.x, __init__ parameter)."""
    fields = getattr(cls, "__dataclass_fields__", None) or {}
    if name in fields:
        return True
    try:
        return name in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def text_config_kwargs(config_cls, vision):
    kw = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
              num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=4096,
              rms_norm_eps=1e-5, hidden_act="silu", initializer_range=0.02)
    if not vision or takes(config_cls, "tie_word_embeddings"):  # 5.x keeps it on Glm4vConfig only
        kw["tie_word_embeddings"] = False
    if takes(config_cls, "rope_parameters"):  # transformers 5.x: everything rotary in rope_parameters
        rope = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": PARTIAL_ROTARY}
        if vision:
            rope["mrope_section"] = list(MROPE_SECTION)
        kw["rope_parameters"] = rope
    else:  # 4.5x: rope_theta and partial_rotary_factor at the top, M-RoPE sections in rope_scaling
        kw["rope_theta"] = 10000.0
        kw["partial_rotary_factor"] = PARTIAL_ROTARY
        if vision:
            kw["rope_scaling"] = {"type": "default", "mrope_section": list(MROPE_SECTION)}
    if not vision:  # Glm4Config; Glm4vTextConfig has no head_dim (hidden_size / heads) and always q/k/v biases
        kw.update(head_dim=HEAD_DIM, attention_bias=True, pad_token_id=0, eos_token_id=list(EOS_IDS),
                  bos_token_id=None)
    return kw


def set_eager(cfg):
    for c in (cfg, getattr(cfg, "text_config", None), getattr(cfg, "vision_config", None)):
        if c is not None:
            try:
                c._attn_implementation = "eager"
            except Exception as e:  # noqa: BLE001 - older/newer property semantics
                note(f"cannot set eager attention on {type(c).__name__}: {e}")


def build_model(cls, cfg):
    set_eager(cfg)
    try:
        model = cls._from_config(cfg, attn_implementation="eager")
    except Exception as e:  # noqa: BLE001 - private API; fall back to the plain constructor
        note(f"{cls.__name__}._from_config(attn_implementation='eager') failed ({e}); using {cls.__name__}(config)")
        model = cls(cfg)
    model = model.float().eval()
    impls = attn_implementations(model)
    if any(v != "eager" for v in impls.values()) and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
        except Exception as e:  # noqa: BLE001
            note(f"set_attn_implementation('eager') failed: {e}")
        impls = attn_implementations(model)
    if any(v != "eager" for v in impls.values()):
        problem(f"{cls.__name__}: attention implementations {impls} (wanted eager everywhere)")
    log(f"{cls.__name__}: attention {impls}, {sum(p.numel() for p in model.parameters())} parameters")
    return model


def attn_implementations(model):
    seen = {}
    for _, m in model.named_modules():
        c = getattr(m, "config", None)
        if c is not None and hasattr(c, "_attn_implementation"):
            seen[type(c).__name__] = getattr(c, "_attn_implementation", None)
    return seen


def check_rotary(model, vision):
    """The text rotary embedding must turn rotary dim 8 (4 frequencies), as config.json says to the engine."""
    found = []
    for name, m in model.named_modules():
        inv = getattr(m, "inv_freq", None)
        if isinstance(inv, torch.Tensor) and "visual" not in name and name.endswith("rotary_emb"):
            found.append((name, inv.numel()))
    want = int(HEAD_DIM * PARTIAL_ROTARY) // 2
    if not found:
        note("no text rotary_emb.inv_freq found to check the partial rotary factor")
    for name, n in found:
        if n != want:
            problem(f"{name}.inv_freq has {n} frequencies, expected {want} (partial_rotary_factor not taken): "
                    "the goldens do not match the config.json the engine reads")
    if vision:
        tc = model.config.text_config
        rope = getattr(tc, "rope_parameters", None) or getattr(tc, "rope_scaling", None) or {}
        if list(rope.get("mrope_section", [])) != MROPE_SECTION:
            problem(f"text config rope {rope} lacks mrope_section {MROPE_SECTION}")


def randomize(model, seed):
    """Re-draws every parameter with spreads large enough that logits differ clearly between tokens."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name or name.endswith("norm1.weight") or name.endswith(
                    "norm2.weight") or "post_projection_norm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "position_embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            elif "patch_embed.proj.weight" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    out, emb = model.get_output_embeddings(), model.get_input_embeddings()
    if out is not None and out.weight.data_ptr() == emb.weight.data_ptr():
        fatal("lm_head is tied to the embeddings although tie_word_embeddings is false")


def save_model(model, folder, shard=None):
    shutil.rmtree(folder, ignore_errors=True)
    params = inspect.signature(model.save_pretrained).parameters
    kw = {}
    if "safe_serialization" in params:  # gone in releases that only write safetensors
        kw["safe_serialization"] = True
    if shard:
        if "max_shard_size" in params:
            kw["max_shard_size"] = shard
        else:
            note("save_pretrained takes no max_shard_size: the vision checkpoint is not sharded")
    model.save_pretrained(folder, **kw)
    names = sorted(os.listdir(folder))
    if not any(n.endswith(".safetensors") for n in names):
        fatal(f"{folder}: save_pretrained wrote no safetensors ({names})")
    if shard and "model.safetensors.index.json" not in names:
        note(f"{folder}: not sharded ({names})")
    # generation_config.json: the engine takes its stop ids from here.
    gen = {"_from_model_config": False, "do_sample": False, "eos_token_id": list(EOS_IDS), "pad_token_id": EOT,
           "transformers_version": transformers.__version__}
    with open(os.path.join(folder, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)


def read_safetensors(folder):
    tensors = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors"):
            continue
        with open(os.path.join(folder, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                tensors[k] = (v["dtype"], list(v["shape"]), fn)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map", {})
        for k, (_, _, fn) in tensors.items():
            if weight_map.get(k) != fn:
                problem(f"{index}: {k} maps to {weight_map.get(k)}, it is in {fn}")
        for k in weight_map:
            if k not in tensors:
                problem(f"{index}: names {k}, which no shard holds")
    return tensors


def expected_tensors(vision):
    """(prefixes, name, shape) the engine loads (engine/glm/glm_model.cpp), in both published layouts."""
    tp = ["model.language_model.", "model."] if vision else ["model."]
    vp = ["model.visual.", "visual."]
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    out = [(tp, "embed_tokens.weight", [VOCAB, HIDDEN]), (tp, "norm.weight", [HIDDEN]),
           ([""], "lm_head.weight", [VOCAB, HIDDEN])]
    for i in range(LAYERS):
        p = f"layers.{i}."
        out += [(tp, p + n, [HIDDEN]) for n in ("input_layernorm.weight", "post_self_attn_layernorm.weight",
                                                 "post_attention_layernorm.weight", "post_mlp_layernorm.weight")]
        out += [(tp, p + "self_attn.q_proj.weight", [q, HIDDEN]), (tp, p + "self_attn.k_proj.weight", [kv, HIDDEN]),
                (tp, p + "self_attn.v_proj.weight", [kv, HIDDEN]), (tp, p + "self_attn.o_proj.weight", [HIDDEN, q]),
                (tp, p + "self_attn.q_proj.bias", [q]), (tp, p + "self_attn.k_proj.bias", [kv]),
                (tp, p + "self_attn.v_proj.bias", [kv]), (tp, p + "mlp.gate_up_proj.weight", [2 * FFN, HIDDEN]),
                (tp, p + "mlp.down_proj.weight", [HIDDEN, FFN])]
    if vision:
        v = VISION
        hid, o, ms, inter = v["hidden_size"], v["out_hidden_size"], v["spatial_merge_size"], v["intermediate_size"]
        npos = (v["image_size"] // v["patch_size"]) ** 2
        out += [(vp, "patch_embed.proj.weight", [hid, 3, v["temporal_patch_size"], v["patch_size"], v["patch_size"]]),
                (vp, "patch_embed.proj.bias", [hid]), (vp, "post_conv_layernorm.weight", [hid]),
                (vp, "embeddings.position_embedding.weight", [npos, hid]), (vp, "post_layernorm.weight", [hid]),
                (vp, "downsample.weight", [o, hid, ms, ms]), (vp, "downsample.bias", [o]),
                (vp, "merger.proj.weight", [o, o]), (vp, "merger.post_projection_norm.weight", [o]),
                (vp, "merger.post_projection_norm.bias", [o]), (vp, "merger.gate_proj.weight", [inter, o]),
                (vp, "merger.up_proj.weight", [inter, o]), (vp, "merger.down_proj.weight", [o, inter])]
        for i in range(v["depth"]):
            p = f"blocks.{i}."
            out += [(vp, p + "norm1.weight", [hid]), (vp, p + "norm2.weight", [hid]),
                    (vp, p + "attn.qkv.weight", [3 * hid, hid]), (vp, p + "attn.proj.weight", [hid, hid]),
                    (vp, p + "mlp.gate_proj.weight", [o, hid]), (vp, p + "mlp.up_proj.weight", [o, hid]),
                    (vp, p + "mlp.down_proj.weight", [hid, o])]
    return out


def check_tensors(folder, vision):
    tensors = read_safetensors(folder)
    used = set()
    for prefixes, name, shape in expected_tensors(vision):
        hit = next((p + name for p in prefixes if p + name in tensors), None)
        if hit is None:
            problem(f"{folder}: the engine needs {prefixes[0] + name}, not in the checkpoint")
            continue
        used.add(hit)
        dtype, got, _ = tensors[hit]
        if got != shape:
            problem(f"{folder}: {hit} has shape {got}, the engine expects {shape}")
        if dtype != "F32":
            problem(f"{folder}: {hit} is {dtype}, expected F32")
    extra = sorted(set(tensors) - used)
    if extra:
        problem(f"{folder}: tensors the engine does not load (it would compute without them): {extra}")
    layouts = sorted({".".join(k.split(".")[:2]) for k in tensors})
    log(f"{folder}: {len(tensors)} tensors, {len({t[2] for t in tensors.values()})} file(s), prefixes {layouts}")


def check_config(folder, vision):
    """config.json as engine/glm/glm_config.cpp reads it."""
    with open(os.path.join(folder, "config.json")) as f:
        j = json.load(f)
    arch = (j.get("architectures") or [""])[0]
    want_arch = "Glm4vForConditionalGeneration" if vision else "Glm4ForCausalLM"
    if arch != want_arch:
        problem(f"{folder}/config.json: architectures[0] is {arch!r}, expected {want_arch}")
    tj = j["text_config"] if isinstance(j.get("text_config"), dict) else j
    if vision and tj is j:
        problem(f"{folder}/config.json: no text_config object")
    for key, want in (("vocab_size", VOCAB), ("hidden_size", HIDDEN), ("num_hidden_layers", LAYERS),
                      ("num_attention_heads", HEADS), ("num_key_value_heads", KV_HEADS), ("intermediate_size", FFN)):
        if tj.get(key) != want:
            problem(f"{folder}/config.json: text {key} is {tj.get(key)!r}, expected {want}")
    head_dim = tj.get("head_dim") or HIDDEN // HEADS
    if head_dim != HEAD_DIM:
        problem(f"{folder}/config.json: head_dim {head_dim}")
    if tj.get("hidden_act", "silu") != "silu":
        problem(f"{folder}/config.json: hidden_act {tj.get('hidden_act')!r}")
    if tj.get("tie_word_embeddings", j.get("tie_word_embeddings", False)):
        problem(f"{folder}/config.json: tie_word_embeddings is true")
    rs = tj.get("rope_parameters") if isinstance(tj.get("rope_parameters"), dict) else (
        tj.get("rope_scaling") if isinstance(tj.get("rope_scaling"), dict) else {})
    theta = rs.get("rope_theta", tj.get("rope_theta", 10000.0))
    partial = rs.get("partial_rotary_factor", tj.get("partial_rotary_factor", 1.0 if vision else 0.5))
    rtype = rs.get("rope_type", rs.get("type", "default"))
    if theta != 10000.0 or int(head_dim * partial) != int(HEAD_DIM * PARTIAL_ROTARY) or rtype != "default":
        problem(f"{folder}/config.json: rope theta {theta}, partial {partial}, type {rtype!r} (text config {tj})")
    if vision:
        if list(rs.get("mrope_section", [])) != MROPE_SECTION:
            problem(f"{folder}/config.json: mrope_section {rs.get('mrope_section')!r}")
        vj = j.get("vision_config") or {}
        engine_default = {"patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": 2, "in_channels": 3,
                          "image_size": 336, "out_hidden_size": tj.get("hidden_size"), "rms_norm_eps": 1e-5,
                          "attention_bias": False, "hidden_act": "silu"}
        for key, want in VISION.items():
            if vj.get(key, engine_default.get(key)) != want:
                problem(f"{folder}/config.json: vision_config {key} is {vj.get(key)!r}, expected {want!r}")
        for key, want in (("image_token_id", IMAGE), ("image_start_token_id", IMAGE_START),
                          ("image_end_token_id", IMAGE_END), ("video_start_token_id", VIDEO_START),
                          ("video_end_token_id", VIDEO_END)):
            if j.get(key) != want:
                problem(f"{folder}/config.json: {key} is {j.get(key)!r}, expected {want}")
    else:
        if not tj.get("attention_bias", True):
            problem(f"{folder}/config.json: attention_bias false")


# ---- image processor --------------------------------------------------------------------------------------------
def backend_of(obj_or_cls):
    names = [c.__name__ for c in inspect.getmro(obj_or_cls if inspect.isclass(obj_or_cls) else type(obj_or_cls))]
    if any(n in ("TorchvisionBackend", "BaseImageProcessorFast") or n.endswith("Fast") for n in names):
        return "torchvision"
    if not inspect.isclass(obj_or_cls):
        b = getattr(obj_or_cls, "backend", None)
        if isinstance(b, str):
            return b
    return "pil"


def image_processor_class():
    """The PIL-backed Glm4v image processor: engine/media/glm4v_image_processor.cpp reproduces PIL's bicubic
    resize, not torchvision's. 5.x: Glm4vImageProcessorPil (Glm4vImageProcessor is torchvision there);
    4.5x: Glm4vImageProcessor."""
    tried = []
    for module, name in (("transformers", "Glm4vImageProcessorPil"),
                         ("transformers.models.glm4v.image_processing_pil_glm4v", "Glm4vImageProcessorPil"),
                         ("transformers", "Glm4vImageProcessor"),
                         ("transformers.models.glm4v.image_processing_glm4v", "Glm4vImageProcessor")):
        try:
            cls = getattr(importlib.import_module(module), name)
        except Exception as e:  # noqa: BLE001
            tried.append(f"{module}.{name}: {type(e).__name__}")
            continue
        if backend_of(cls) != "pil":
            tried.append(f"{module}.{name}: torchvision backend")
            continue
        return cls
    fatal("no PIL-backed GLM-4V image processor in this transformers: " + "; ".join(tried))


def make_image_processor(cls, min_pixels, max_pixels):
    proc = cls(size={"shortest_edge": min_pixels, "longest_edge": max_pixels}, patch_size=14, temporal_patch_size=2,
               merge_size=2)
    if backend_of(proc) != "pil":
        fatal(f"{type(proc).__name__} runs on the {backend_of(proc)} backend")
    return proc


def preprocess(proc, images):
    feats = proc(images=images, return_tensors="pt")
    pv = feats["pixel_values"]
    grid = feats["image_grid_thw"]
    if not isinstance(pv, torch.Tensor):
        pv = torch.as_tensor(np.asarray(pv))
    if not isinstance(grid, torch.Tensor):
        grid = torch.as_tensor(np.asarray(grid))
    return pv.float(), grid.long()


def processor_case(proc, image, name, extra):
    pv, grid = preprocess(proc, [image])
    g = [int(v) for v in grid[0].tolist()]
    case = dict(name=name, **extra, grid_thw=g, shape=[int(s) for s in pv.shape], sum=float(pv.double().sum()),
                abs_sum=float(pv.double().abs().sum()), first_values=rounded(pv[0, :16]))
    # Sums of 9 evenly spaced patch rows: the total sums do not see patches in the wrong order, these do.
    n = pv.shape[0]
    rows = sorted({(n - 1) * k // 8 for k in range(9)})
    case["row_sums"] = {"rows": rows, "sums": [float(pv[r].double().sum()) for r in rows]}
    if pv.shape[0] != g[0] * g[1] * g[2] or pv.shape[1] != 3 * 2 * 14 * 14:
        problem(f"processor {name}: pixel_values {list(pv.shape)} for grid {g}")
    log(f"processor {name}: grid {g}, pixel_values {list(pv.shape)}")
    return case


def check_preprocessor_config(folder, min_pixels, max_pixels):
    """preprocessor_config.json as engine/media/glm4v_image_processor.cpp reads it; keys it lacks are added."""
    path = os.path.join(folder, "preprocessor_config.json")
    if not os.path.isfile(path):
        problem(f"{path}: not written")
        return
    with open(path) as f:
        j = json.load(f)
    want = {"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "do_resize": True, "do_rescale": True,
            "do_normalize": True, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
            "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}}
    changed = []
    for key, value in want.items():
        if key not in j or j[key] is None:
            j[key] = value
            changed.append(key)
        elif key == "size":
            if (j[key] or {}).get("shortest_edge") != min_pixels or (j[key] or {}).get("longest_edge") != max_pixels:
                problem(f"{path}: size {j[key]}, expected {value}")
        elif isinstance(value, list):
            if len(j[key]) != 3 or any(abs(a - b) > 1e-7 for a, b in zip(j[key], value)):
                problem(f"{path}: {key} {j[key]}, expected {value}")
        elif j[key] != value:
            problem(f"{path}: {key} {j[key]!r}, expected {value!r}")
    if abs(float(j.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9:
        problem(f"{path}: rescale_factor {j.get('rescale_factor')}")
    if changed:
        with open(path, "w") as f:
            json.dump(j, f, indent=2)
        note(f"{path}: added {changed} (the saved file lacked them)")


# ---- processor (tokenizer + image processor) --------------------------------------------------------------------
def build_processor(image_processor, tokenizer):
    """Glm4vProcessor from the in-memory parts; None (with a note) if this release will not build one."""
    try:
        from transformers import Glm4vProcessor
    except Exception as e:  # noqa: BLE001
        note(f"no Glm4vProcessor ({e}): prompts are expanded by hand")
        return None
    attempts = []
    try:
        from transformers import Glm4vVideoProcessor
        attempts.append(("with a Glm4vVideoProcessor", {"video_processor": Glm4vVideoProcessor()}))
    except Exception as e:  # noqa: BLE001 - needs torchvision
        note(f"Glm4vVideoProcessor unavailable ({type(e).__name__}: {e})")
    attempts.append(("without a video processor", {}))
    errors = []
    for how, extra in attempts:
        try:
            proc = Glm4vProcessor(image_processor=image_processor, tokenizer=tokenizer, **extra)
            log(f"Glm4vProcessor built {how}")
            return proc
        except Exception as e:  # noqa: BLE001
            errors.append(f"{how}: {type(e).__name__}: {e}")
    note("Glm4vProcessor could not be built (" + " | ".join(errors) + "): prompts are expanded by hand")
    return None


def expand_image_tokens(prompt, grids, merge=2):
    """Glm4vProcessor's expansion: the k-th <|image|> becomes t*h*w/merge^2 copies."""
    parts = prompt.split("<|image|>")
    if len(parts) - 1 != len(grids):
        fatal(f"prompt has {len(parts) - 1} <|image|> markers for {len(grids)} images")
    out = parts[0]
    for g, rest in zip(grids, parts[1:]):
        t, h, w = (int(v) for v in g)
        out += "<|image|>" * (t * h * w // (merge * merge)) + rest
    return out


def reference_rope_index(ids, grids, merge=2):
    """Glm4vModel.get_rope_index for one unpadded sequence of text and images (no video)."""
    rows = [[], [], []]
    nxt, i, k, n = 0, 0, 0, len(ids)
    while i < n:
        image = ids[i] == IMAGE
        j = i
        while j < n and (ids[j] == IMAGE) == image:
            j += 1
        if image:
            t, h, w = (int(v) for v in grids[k])
            k += 1
            lh, lw = h // merge, w // merge
            if j - i != t * lh * lw:
                fatal(f"image run of {j - i} tokens for grid {[t, h, w]}")
            for q in range(j - i):
                rows[0].append(nxt + q // (lh * lw))
                rows[1].append(nxt + (q // lw) % lh)
                rows[2].append(nxt + q % lw)
            nxt = max(max(r[i:j]) for r in rows) + 1
        else:
            for q in range(j - i):
                for r in rows:
                    r.append(nxt + q)
            nxt += j - i
        i = j
    return rows, nxt - n


# ---- running ----------------------------------------------------------------------------------------------------
def rounded(t, digits=6):
    return [round(float(v), digits) for v in t.reshape(-1).tolist()]


def greedy(forward, ids, steps):
    """Argmax decoding by full recompute (the engine decodes with its cache and must agree)."""
    ids = list(ids)
    out = []
    for _ in range(steps):
        logits = forward(ids)[0, -1].clone()
        logits[EXCLUDED] = -float("inf")
        tok = int(torch.argmax(logits))
        out.append(tok)
        ids.append(tok)
    return out


def generate_check(model, name, inputs, n, want):
    """The same greedy continuation through model.generate (KV cache); a difference is reported, not fatal."""
    try:
        out = model.generate(**inputs, do_sample=False, max_new_tokens=GREEDY_STEPS, suppress_tokens=EXCLUDED,
                             pad_token_id=EOT)
        got = [int(v) for v in out[0, n:].tolist()]
    except Exception as e:  # noqa: BLE001
        note(f"{name}: generate() cross-check did not run ({type(e).__name__}: {e})")
        return None
    if got != want:
        note(f"{name}: generate(do_sample=False) gave {got}, full-recompute argmax gave {want}")
    else:
        log(f"{name}: generate(do_sample=False) agrees with the argmax loop")
    return got


def logit_rows(logits, positions):
    rows, seen = [], set()
    n = logits.shape[0]
    for p in positions:
        at = p + n if p < 0 else p
        if 0 <= at < n and at not in seen:
            seen.add(at)
            rows.append({"position": int(p), "values": rounded(logits[at])})
    return rows


def bf16_rows(model, case, extra=None):
    """Transformers' own bfloat16 run (weights and activations in bfloat16, as torch_dtype=torch.bfloat16 gives) of
    the case's prompt: logits at the same positions (as float), and the greedy continuation. extra(seq): more
    forward keywords (attention mask, images: pixel values cast to bfloat16 here)."""
    # A fresh model with the same weights, not a deepcopy: the kit's stand-in for register_forward_pre_hook(
    # with_kwargs=True) wraps forward in a closure that a copy would share with the float32 original.
    m = build_model(type(model), copy.deepcopy(model.config))
    m.load_state_dict(model.state_dict())
    m = m.to(torch.bfloat16).eval()

    def forward(seq):
        kw = extra(seq) if extra else {}
        if "pixel_values" in kw:
            kw["pixel_values"] = kw["pixel_values"].to(torch.bfloat16)
        return m(input_ids=torch.tensor([seq], dtype=torch.long), use_cache=False, **kw).logits.float()

    ids = case["input_ids"]
    logits = forward(ids)[0]
    out = {"dtype": "bfloat16", "logits": logit_rows(logits, [r["position"] for r in case["logits"]]),
           "greedy": greedy(forward, ids, GREEDY_STEPS)}
    err = max(max(abs(a - b) for a, b in zip(r32["values"], r16["values"]))
              for r32, r16 in zip(case["logits"], out["logits"]))
    log(f"{case['name']}: bfloat16 logits differ from float32 by up to {err:.3g}; greedy {out['greedy']}")
    out["max_abs_diff_from_float32"] = round(err, 6)
    return out


def text_model_case(model, tok, name, messages, generate, enable_thinking=None):
    prompt = render_prompt(messages, enable_thinking=enable_thinking)
    template_check(tok, name, messages, prompt, enable_thinking)
    ids = encode(tok, prompt)

    def forward(seq):
        return model(input_ids=torch.tensor([seq], dtype=torch.long), use_cache=False).logits

    logits = forward(ids)[0]
    case = {"name": name, "checkpoint": "glm4-tiny", **case_inputs(messages, enable_thinking), "prompt": prompt,
            "input_ids": ids,
            "logits": logit_rows(logits, [0, len(ids) // 2, -1]), "greedy": greedy(forward, ids, GREEDY_STEPS)}
    if generate:
        g = generate_check(model, name, {"input_ids": torch.tensor([ids], dtype=torch.long)}, len(ids),
                           case["greedy"])
        if g is not None and g != case["greedy"]:
            case["greedy_generate"] = g
    log(f"{name}: {len(ids)} tokens, greedy {case['greedy']}")
    return case


class VisionRunner:
    def __init__(self, model, tok, image_proc, processor, generate):
        self.model, self.tok, self.image_proc, self.processor, self.generate = (
            model, tok, image_proc, processor, generate)
        names = set()
        for fn in (model.forward, model.model.forward, getattr(model.model, "get_rope_index", None)):
            try:
                names |= set(inspect.signature(fn).parameters) if fn is not None else set()
            except (TypeError, ValueError):
                pass
        # 5.x numbers image positions from mm_token_type_ids (1 on image tokens), which Glm4vProcessor returns.
        self.pass_mm_types = "mm_token_type_ids" in names
        log(f"Glm4v forward: mm_token_type_ids {'passed' if self.pass_mm_types else 'not used by this release'}")
        self.language_model = getattr(model.model, "language_model", None) or getattr(model, "language_model", None)
        if self.language_model is None:
            fatal("cannot find the text model (model.model.language_model) to read the rotary positions")
        self.captured = {}
        self.language_model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        pos = kwargs.get("position_ids")
        self.captured["position_ids"] = None if pos is None else pos.detach().clone()

    @staticmethod
    def mm_types(seq):
        return torch.tensor([[1 if t == IMAGE else 0 for t in seq]], dtype=torch.long)

    def run(self, name, messages, images, described, enable_thinking=None, bf16=False):
        """images: PIL images in prompt order; described: their JSON entries (grid_thw is filled in here)."""
        prompt = render_prompt(messages, enable_thinking=enable_thinking)
        template_check(self.tok, name, messages, prompt, enable_thinking)
        pv = grid = None
        if images:
            pv, grid = preprocess(self.image_proc, images)
        grids = [[int(v) for v in g] for g in grid.tolist()] if grid is not None else []
        ids = encode(self.tok, expand_image_tokens(prompt, grids))
        mm_types = self.mm_types(ids)
        source = "tokenizer + image processor, image tokens expanded by this script"
        if self.processor is not None:
            try:
                out = self.processor(text=[prompt], images=images or None, return_tensors="pt",
                                     add_special_tokens=False)
                p_ids = [int(v) for v in out["input_ids"][0].tolist()]
                if p_ids != ids:
                    problem(f"{name}: Glm4vProcessor gave ids {p_ids[:50]}..., the expansion here {ids[:50]}...")
                if images:
                    p_pv, p_grid = out["pixel_values"].float(), out["image_grid_thw"].long()
                    if not torch.equal(p_grid, grid) or not torch.equal(p_pv, pv):
                        problem(f"{name}: Glm4vProcessor pixel_values/grid differ from the image processor's")
                ids, pv = p_ids, (out["pixel_values"].float() if images else None)
                grid = out["image_grid_thw"].long() if images else None
                if "mm_token_type_ids" in out:
                    mm_types = torch.as_tensor(out["mm_token_type_ids"]).long().reshape(1, -1)
                    if not torch.equal(mm_types, self.mm_types(ids)):
                        problem(f"{name}: processor mm_token_type_ids differ from (ids == <|image|>)")
                source = f"{type(self.processor).__name__}"
            except Exception as e:  # noqa: BLE001
                note(f"{name}: Glm4vProcessor call failed ({type(e).__name__}: {e}); using the hand expansion")
        for d, g in zip(described, grids):
            d["grid_thw"] = g

        def extra(seq):
            # An all-ones attention_mask (the math is unchanged): without one, Transformers 4.57's masking code
            # fails for Glm4v with use_cache=False (expand(LongTensor{[3, 1, N]}, size=[1, -1])).
            kw = {"attention_mask": torch.ones(1, len(seq), dtype=torch.long)}
            if pv is not None:
                kw["pixel_values"] = pv
                kw["image_grid_thw"] = grid
            if self.pass_mm_types:
                kw["mm_token_type_ids"] = self.mm_types(seq)
            return kw

        def forward(seq):
            self.captured.clear()
            return self.model(input_ids=torch.tensor([seq], dtype=torch.long), use_cache=False, **extra(seq)).logits

        logits = forward(ids)[0]
        positions, source_pos = self.positions(ids, grid, mm_types)
        ref_rows, ref_delta = reference_rope_index(ids, grids)
        if positions is None:
            positions, source_pos = ref_rows, "this script's get_rope_index (the model's could not be read)"
            problem(f"{name}: rotary positions not read from the model; written from the reference")
        elif positions != ref_rows:
            problem(f"{name}: the model's rotary positions differ from get_rope_index's rule "
                    f"(first rows {[r[:12] for r in positions]} vs {[r[:12] for r in ref_rows]})")
        n = len(ids)
        rope_delta = max(max(r) for r in positions) + 1 - n
        if rope_delta != ref_delta:
            problem(f"{name}: rope delta {rope_delta}, reference {ref_delta}")
        chosen = [0, -1]
        if IMAGE in ids:
            first_end = ids.index(IMAGE_END)
            chosen += [first_end + 1, ids.index(IMAGE) + 1, first_end - 1]
            last_end = len(ids) - 1 - ids[::-1].index(IMAGE_END)
            if last_end != first_end:  # several images: around the last one too
                chosen += [last_end + 1, last_end - 1]
        case = {"name": name, "checkpoint": "glm4v-tiny", **case_inputs(messages, enable_thinking), "prompt": prompt,
                "input_ids": ids, "images": described,
                "position_ids": positions, "rope_delta": int(rope_delta), "logits": logit_rows(logits, chosen),
                "greedy": greedy(forward, ids, GREEDY_STEPS), "inputs_from": source, "positions_from": source_pos}
        if self.generate:
            inputs = {"input_ids": torch.tensor([ids], dtype=torch.long)}
            if pv is not None:
                inputs.update(pixel_values=pv, image_grid_thw=grid)
            if self.pass_mm_types:
                inputs["mm_token_type_ids"] = mm_types
            g = generate_check(self.model, name, inputs, n, case["greedy"])
            if g is not None and g != case["greedy"]:
                case["greedy_generate"] = g
        log(f"{name}: {n} tokens, grids {grids}, rope delta {rope_delta}, greedy {case['greedy']}")
        if bf16:
            out16 = attempt(f"{name} in bfloat16", bf16_rows, self.model, case, extra)
            if out16 is not None:
                case["bf16"] = out16
        return case

    def positions(self, ids, grid, mm_types):
        """The (3, n) positions the text model ran with: from the hook on the first forward of `ids`, else from
        get_rope_index called by keyword (its signature changed between releases)."""
        n = len(ids)
        # forward() cleared and the hook refilled `captured` for the last call, which was the prompt itself.
        pos = self.captured.get("position_ids", "absent")
        if isinstance(pos, torch.Tensor):
            p = pos.long()
            if p.dim() == 2:
                p = p[None].expand(3, -1, -1)
            if p.dim() == 3 and p.shape[0] == 4:  # some releases put the text positions first
                p = p[1:]
            if p.dim() == 3 and p.shape[0] == 3 and p.shape[-1] == n:
                return [[int(v) for v in row] for row in p[:, 0, :].tolist()], "the model (text model's input)"
            note(f"position_ids of shape {list(pos.shape)} reached the text model; asking get_rope_index")
        elif pos is None:  # the text model numbers positions itself: plain text
            if IMAGE not in ids:
                return [list(range(n)) for _ in range(3)], "the model (none passed: 0..n-1)"
        fn = getattr(self.model.model, "get_rope_index", None)
        if fn is None:
            return None, None
        try:
            params = inspect.signature(fn).parameters
            kw = {"input_ids": torch.tensor([ids], dtype=torch.long)}
            if "image_grid_thw" in params:
                kw["image_grid_thw"] = grid
            if "mm_token_type_ids" in params:
                kw["mm_token_type_ids"] = mm_types
            if "attention_mask" in params:
                kw["attention_mask"] = torch.ones(1, n, dtype=torch.long)
            p, _ = fn(**kw)
            return [[int(v) for v in row] for row in p[:, 0, :].tolist()], "get_rope_index"
        except Exception as e:  # noqa: BLE001
            note(f"get_rope_index failed: {type(e).__name__}: {e}")
            return None, None


def script_provenance():
    """Which script made the goldens: the last commit that changed it, and whether the file differs from it."""
    path = os.path.abspath(__file__)
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    out = {"script_commit": "unknown", "script_sha256": sha, "script_modified": None}
    try:
        here = os.path.dirname(path)
        commit = subprocess.run(["git", "-C", here, "log", "-1", "--format=%H", "--", os.path.basename(path)],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", os.path.basename(path)],
                               capture_output=True, text=True, check=True).stdout.strip()
        out["script_commit"] = commit or "uncommitted"
        out["script_modified"] = bool(dirty)
        if dirty:
            note("the script has uncommitted changes: commit it, then regenerate, so that script_commit is exact")
    except Exception as e:  # noqa: BLE001 - no git, or not a checkout
        note(f"script commit unknown ({type(e).__name__}: {e})")
    return out


# ---- main -------------------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", ".."))
    ap.add_argument("--out", default=os.path.join(repo, "tests", "goldens", "glm"),
                    help="output folder (default tests/goldens/glm)")
    ap.add_argument("--fixtures", default=os.environ.get("WB_FIXTURES_DIR") or os.path.join(repo, "..", "shared",
                                                                                            "fixtures"),
                    help="shared fixtures folder holding images/llama_cute.jpg (default $WB_FIXTURES_DIR, else "
                         "../shared/fixtures)")
    ap.add_argument("--tar", help="also pack the output folder into this .tgz (its top folder named like --out)")
    ap.add_argument("--no-generate-check", action="store_true", help="skip the model.generate() cross-checks")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    stale = os.path.join(out, "goldens.json")
    if os.path.exists(stale):
        os.remove(stale)  # a run that stops half-way must not leave old goldens beside new checkpoints
    log(f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}, Pillow {Image.__version__}; output {out}")
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float32)
    generate = not args.no_generate_check

    tok = build_tokenizer()
    ip_cls = image_processor_class()
    log(f"image processor: {ip_cls.__module__}.{ip_cls.__name__}")
    goldens = {
        "generator": "tools/hf-goldens/make_glm_goldens.py",
        **script_provenance(),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "pillow_version": Image.__version__,
        "logit_tolerance": LOGIT_TOLERANCE,
        "greedy_excluded": EXCLUDED,
        "greedy_steps": GREEDY_STEPS,
        "tokens": dict(TOKEN_ID),
        "image_processor": {"class": ip_cls.__module__ + "." + ip_cls.__name__, "backend": "pil"},
        "checkpoint_processor": {"min_pixels": CHECKPOINT_PIXELS[0], "max_pixels": CHECKPOINT_PIXELS[1]},
        "processor": [],
        "fixture_processor": [],
        "models": [],
        "fixture_models": [],
    }
    photo = load_photo(args.fixtures)

    # ---- image processor alone --------------------------------------------------------------------------------
    for name, w, h, variant, (lo, hi) in [
        ("phone screenshot 1080x2400, max_pixels 5000000", 1080, 2400, 3, (12544, 5000000)),
        ("phone screenshot 1080x2400, GLM-4.1V budget", 1080, 2400, 3, GLM41V_PIXELS),
        ("landscape 300x200", 300, 200, 0, GLM41V_PIXELS),
        ("tall 150x500", 150, 500, 1, GLM41V_PIXELS),
        ("tiny 20x90, scaled up", 20, 90, 2, GLM41V_PIXELS),  # 4.5x's smart_resize refuses sides under 28
    ]:
        try:
            proc = make_image_processor(ip_cls, lo, hi)
            goldens["processor"].append(processor_case(
                proc, procedural_image(w, h, variant), name,
                {"width": w, "height": h, "variant": variant, "min_pixels": lo, "max_pixels": hi}))
        except Exception as e:  # noqa: BLE001
            (note if w < 28 or h < 28 else problem)(f"processor {name}: {type(e).__name__}: {e}")
    if photo is not None:
        for name, (lo, hi) in [("photo 1024x1024, GLM-4.1V budget", GLM41V_PIXELS),
                               ("photo 1024x1024, tiny checkpoint budget", CHECKPOINT_PIXELS)]:
            case = attempt(f"processor {name}", processor_case, make_image_processor(ip_cls, lo, hi),
                           photo["image"], name,
                           {"fixture": photo["fixture"], "width": photo["width"], "height": photo["height"],
                            "rgb_sum": photo["rgb_sum"], "sha256": photo["sha256"], "min_pixels": lo,
                            "max_pixels": hi})
            if case is not None:
                goldens["fixture_processor"].append(case)

    goldens["png16"] = png16_cases(out)

    # ---- Glm4ForCausalLM -------------------------------------------------------------------------------------
    cfg = Glm4Config(**text_config_kwargs(Glm4Config, vision=False))
    model = build_model(Glm4ForCausalLM, cfg)
    check_rotary(model, vision=False)
    randomize(model, 1)
    ckpt = os.path.join(out, "glm4-tiny")
    save_model(model, ckpt)
    save_tokenizer(tok, ckpt)
    check_config(ckpt, vision=False)
    check_tensors(ckpt, vision=False)
    case = attempt("glm4 text", text_model_case, model, tok, "glm4 text",
                   [{"role": "user", "content": "Hello, GLM-4! O\u00f9 est la biblioth\u00e8que? 3+4=7."}], generate)
    if case is not None:
        bf16 = attempt("glm4 text in bfloat16", bf16_rows, model, case)
        if bf16 is not None:
            case["bf16"] = bf16
        goldens["models"].append(case)
    case = attempt("glm4 multi-turn, thinking off", text_model_case, model, tok, "glm4 multi-turn, thinking off",
                   [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there."},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Name a colour, \u00e7a va?"}], generate, False)
    if case is not None:
        goldens["models"].append(case)

    # ---- Glm4vForConditionalGeneration ---------------------------------------------------------------------------
    text_cls = (getattr(Glm4vConfig, "sub_configs", None) or {}).get("text_config")
    if not inspect.isclass(text_cls):
        from transformers.models.glm4v.configuration_glm4v import Glm4vTextConfig as text_cls
    vcfg = Glm4vConfig(
        text_config=text_config_kwargs(text_cls, vision=True), vision_config=dict(VISION),
        image_token_id=IMAGE, video_token_id=VIDEO, image_start_token_id=IMAGE_START, image_end_token_id=IMAGE_END,
        video_start_token_id=VIDEO_START, video_end_token_id=VIDEO_END, tie_word_embeddings=False)
    vmodel = build_model(Glm4vForConditionalGeneration, vcfg)
    check_rotary(vmodel, vision=True)
    randomize(vmodel, 2)
    vckpt = os.path.join(out, "glm4v-tiny")
    save_model(vmodel, vckpt, shard="300KB")  # small shards so that the index path is exercised
    save_tokenizer(tok, vckpt)
    image_proc = make_image_processor(ip_cls, *CHECKPOINT_PIXELS)
    image_proc.save_pretrained(vckpt)
    check_preprocessor_config(vckpt, *CHECKPOINT_PIXELS)
    check_config(vckpt, vision=True)
    check_tensors(vckpt, vision=True)
    processor = build_processor(image_proc, tok)
    goldens["hf_processor"] = None if processor is None else type(processor).__module__ + "." + type(
        processor).__name__
    runner = VisionRunner(vmodel, tok, image_proc, processor, generate)

    def user(*parts):
        content = [{"type": "image"} if p is None else {"type": "text", "text": p} for p in parts]
        return [{"role": "user", "content": content}]

    cases = [
        ("models", "glm4v text only", [{"role": "user", "content": "What is 2+2? Answer."}], [], []),
        ("models", "glm4v one image", user(None, "Describe the picture."), [procedural_image(300, 200, 0)],
         [{"width": 300, "height": 200, "variant": 0}], None, True),
        ("models", "glm4v two images", user(None, "Compare this one", None, "with that one."),
         [procedural_image(150, 500, 1), procedural_image(224, 112, 2)],
         [{"width": 150, "height": 500, "variant": 1}, {"width": 224, "height": 112, "variant": 2}]),
    ]
    if photo is not None:
        cases.append(("fixture_models", "glm4v photo", user(None, "What animal is this?"), [photo["image"]],
                      [{"fixture": photo["fixture"], "width": photo["width"], "height": photo["height"],
                        "rgb_sum": photo["rgb_sum"]}]))
    cases += [
        ("models", "glm4v image in a later turn, thinking on",
         [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi! Send me a picture."},
          user(None, "Here it is. What is in it?")[0]], [procedural_image(300, 200, 0)],
         [{"width": 300, "height": 200, "variant": 0}], True),
        ("models", "glm4v one image, thinking off", user("Look:", None, "Short answer."),
         [procedural_image(224, 112, 2)], [{"width": 224, "height": 112, "variant": 2}], False),
        ("models", "glm4v images in two turns, with a system prompt",
         [{"role": "system", "content": "You see screens."}, user(None, "What is this?")[0],
          {"role": "assistant", "content": "A pattern."}, user("And this one?", None)[0]],
         [procedural_image(150, 500, 1), procedural_image(300, 200, 0)],
         [{"width": 150, "height": 500, "variant": 1}, {"width": 300, "height": 200, "variant": 0}]),
    ]
    for key, name, messages, images, described, *options in cases:  # options: enable_thinking, bf16
        case = attempt(name, runner.run, name, messages, images, described, *options)
        if case is not None:
            goldens[key].append(case)

    goldens["notes"] = NOTES
    goldens["problems"] = PROBLEMS
    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump(goldens, f, indent=1)
        f.write("\n")

    total = 0
    log("wrote:")
    for d, _, names in sorted(os.walk(out)):
        for n in sorted(names):
            p = os.path.join(d, n)
            total += os.path.getsize(p)
            log(f"  {os.path.relpath(p, out):55s} {os.path.getsize(p):9d} bytes")
    log(f"{out}: {total / 1e6:.2f} MB")
    if args.tar:
        tar = os.path.abspath(args.tar)
        os.makedirs(os.path.dirname(tar), exist_ok=True)
        with tarfile.open(tar, "w:gz") as t:
            t.add(out, arcname=os.path.basename(out.rstrip("/")))
        log(f"packed {tar} ({os.path.getsize(tar)} bytes): unpack with tar -xzf {os.path.basename(tar)} -C "
            "tests/goldens")
    if NOTES:
        log(f"{len(NOTES)} note(s) above (also in goldens.json \"notes\")")
    if PROBLEMS:
        log(f"\n{len(PROBLEMS)} PROBLEM(S) - the goldens were written but a self-check failed:")
        for p in PROBLEMS:
            log("  - " + p)
        return 2
    log("all self-checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - say clearly that nothing usable was finished
        traceback.print_exc()
        print("make_glm_goldens.py: FAILED before finishing; goldens.json was not (re)written", file=sys.stderr)
        sys.exit(1)
