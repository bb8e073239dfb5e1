#!/usr/bin/env python3
"""Goldens for the GLM-4 / GLM-4.1V engine path, made with Hugging Face Transformers' own classes.

Builds tiny random-weight Glm4ForCausalLM and Glm4vForConditionalGeneration checkpoints (save_pretrained, sharded
safetensors + index, preprocessor_config.json), runs Transformers' image processor and models on fixed inputs and
writes tests/goldens/glm/goldens.json next to the checkpoints. tests/engine/tst_model_glm.cpp holds the engine to
them (it skips while they are absent).

Inputs are procedural images (an integer formula that the C++ test repeats, so no image files are stored), input
ids written out directly (the tiny checkpoints have no tokenizer), greedy decoding by argmax with the image/video
marker ids excluded (a random model could otherwise "generate" an image token).

Needs torch, transformers (with Glm4v) and Pillow; runs on CPU:
    python3 tools/hf-goldens/make_glm_goldens.py [--out tests/goldens/glm]
Total output stays well under 2 MB.
"""
import argparse
import inspect
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

import transformers
from transformers import Glm4Config, Glm4ForCausalLM, Glm4vConfig, Glm4vForConditionalGeneration

VOCAB = 300
# Token ids of the tiny vocabulary (the test's tokenizer uses 256.. for GLM's special tokens).
GMASK, SOP, USER, ASSISTANT, EOT = 256, 257, 259, 260, 261
IMAGE_START, IMAGE_END, IMAGE, VIDEO_START, VIDEO_END = 288, 289, 290, 291, 292
EXCLUDED = [IMAGE_START, IMAGE_END, IMAGE, VIDEO_START, VIDEO_END]
GREEDY_STEPS = 16


def procedural_image(width, height, variant):
    """Must match procedural() in tests/engine/tst_model_glm.cpp."""
    x = np.arange(width, dtype=np.int64)[None, :]
    y = np.arange(height, dtype=np.int64)[:, None]
    r = (x * 7 + y * 3 + variant * 50) % 256
    g = (x * y + variant * 17) % 251
    b = (((x // 8) ^ (y // 8)) * 16) % 256
    rgb = np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def text_ids(seed, n):
    rng = np.random.default_rng(seed)
    return [int(v) for v in rng.integers(32, 127, size=n)]


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


def rounded(t, digits=6):
    return [round(float(v), digits) for v in t.reshape(-1).tolist()]


def text_config_kwargs(config_cls, vision):
    kw = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5, hidden_act="silu",
              tie_word_embeddings=False)
    params = inspect.signature(config_cls.__init__).parameters
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if vision:
        rope["mrope_section"] = [2, 1, 1]
    if "rope_parameters" in params:  # transformers >= 5 style
        rope["partial_rotary_factor"] = 0.5
        kw["rope_parameters"] = rope
        kw["partial_rotary_factor"] = 0.5
    else:
        kw["rope_theta"] = 10000.0
        kw["partial_rotary_factor"] = 0.5
        if vision:
            kw["rope_scaling"] = {"type": "default", "mrope_section": [2, 1, 1]}
    if not vision:
        kw.update(head_dim=16, attention_bias=True, pad_token_id=0, eos_token_id=[EOT], bos_token_id=None)
    return kw


def greedy(forward, ids, steps):
    ids = list(ids)
    out = []
    for _ in range(steps):
        logits = forward(ids)[0, -1].clone()
        logits[EXCLUDED] = -float("inf")
        tok = int(torch.argmax(logits))
        out.append(tok)
        ids.append(tok)
    return out


def make_processor(min_pixels, max_pixels):
    from transformers import Glm4vImageProcessor
    return Glm4vImageProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels}, patch_size=14,
                               temporal_patch_size=2, merge_size=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "tests", "goldens", "glm"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    goldens = {
        "generator": "tools/hf-goldens/make_glm_goldens.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "logit_tolerance": 2e-3,
        "greedy_excluded": EXCLUDED,
        "processor": [],
        "models": [],
    }

    # ---- processor only ---------------------------------------------------------------------------------------
    for name, w, h, variant, lo, hi in [
        ("phone screenshot 1080x2400, max_pixels 5000000", 1080, 2400, 3, 12544, 5000000),
        ("phone screenshot 1080x2400, GLM-4.1V budget", 1080, 2400, 3, 12544, 9633792),
        ("landscape 300x200", 300, 200, 0, 12544, 9633792),
        ("tall 150x500", 150, 500, 1, 12544, 9633792),
    ]:
        proc = make_processor(lo, hi)
        goldens["image_processor"] = type(proc).__module__ + "." + type(proc).__name__
        feat = proc(images=[procedural_image(w, h, variant)], return_tensors="pt")
        pv = feat["pixel_values"].float()
        grid = [int(v) for v in feat["image_grid_thw"][0].tolist()]
        goldens["processor"].append({
            "name": name, "width": w, "height": h, "variant": variant, "min_pixels": lo, "max_pixels": hi,
            "grid_thw": grid, "shape": list(pv.shape), "sum": float(pv.double().sum()),
            "abs_sum": float(pv.double().abs().sum()), "first_values": rounded(pv[0, :16]),
        })
        print(name, grid, list(pv.shape), file=sys.stderr)

    # ---- Glm4ForCausalLM ----------------------------------------------------------------------------------------
    cfg = Glm4Config(**text_config_kwargs(Glm4Config, vision=False))
    cfg._attn_implementation = "eager"
    model = Glm4ForCausalLM(cfg).eval()
    randomize(model, 1)
    ckpt = os.path.join(out, "glm4-tiny")
    shutil.rmtree(ckpt, ignore_errors=True)
    model.save_pretrained(ckpt, safe_serialization=True)
    ids = [GMASK, SOP, USER] + text_ids(10, 20) + [ASSISTANT]
    fwd = lambda seq: model(input_ids=torch.tensor([seq])).logits
    logits = fwd(ids)[0]
    goldens["models"].append({
        "name": "glm4 text", "checkpoint": "glm4-tiny", "input_ids": ids,
        "logits": [{"position": 0, "values": rounded(logits[0])}, {"position": -1, "values": rounded(logits[-1])}],
        "greedy": greedy(fwd, ids, GREEDY_STEPS),
    })

    # ---- Glm4vForConditionalGeneration --------------------------------------------------------------------------
    from transformers.models.glm4v.configuration_glm4v import Glm4vTextConfig
    vcfg = Glm4vConfig(
        text_config=text_config_kwargs(Glm4vTextConfig, vision=True),
        vision_config=dict(depth=2, hidden_size=32, num_heads=2, patch_size=14, temporal_patch_size=2,
                           spatial_merge_size=2, in_channels=3, image_size=56, out_hidden_size=64,
                           intermediate_size=48, rms_norm_eps=1e-5, hidden_act="silu", attention_bias=False),
        image_token_id=IMAGE, video_token_id=293, image_start_token_id=IMAGE_START, image_end_token_id=IMAGE_END,
        video_start_token_id=VIDEO_START, video_end_token_id=VIDEO_END)
    vcfg._attn_implementation = "eager"
    vmodel = Glm4vForConditionalGeneration(vcfg).eval()
    randomize(vmodel, 2)
    vckpt = os.path.join(out, "glm4v-tiny")
    shutil.rmtree(vckpt, ignore_errors=True)
    # Small shards so that the index path is exercised.
    vmodel.save_pretrained(vckpt, safe_serialization=True, max_shard_size="300KB")
    proc = make_processor(12544, 9633792)
    proc.save_pretrained(vckpt)
    fwd_params = inspect.signature(vmodel.forward).parameters

    def run_case(name, images, pieces):
        """pieces: list of token-id lists and image indices, in order."""
        feats = proc(images=[procedural_image(*im) for im in images], return_tensors="pt") if images else None
        grids = feats["image_grid_thw"] if feats is not None else None
        seq = []
        for piece in pieces:
            if isinstance(piece, int):
                t, gh, gw = [int(v) for v in grids[piece].tolist()]
                seq += [IMAGE_START] + [IMAGE] * (t * gh * gw // 4) + [IMAGE_END]
            else:
                seq += piece

        def forward(s):
            kw = {"input_ids": torch.tensor([s])}
            if feats is not None:
                kw["pixel_values"] = feats["pixel_values"]
                kw["image_grid_thw"] = grids
                if "mm_token_type_ids" in fwd_params:
                    kw["mm_token_type_ids"] = (torch.tensor([s]) == IMAGE).long()
            return vmodel(**kw).logits

        logits = forward(seq)[0]
        case = {"name": name, "checkpoint": "glm4v-tiny", "input_ids": seq,
                "images": [{"width": w, "height": h, "variant": v, "grid_thw": [int(x) for x in grids[i].tolist()]}
                           for i, (w, h, v) in enumerate(images)],
                "logits": [{"position": 0, "values": rounded(logits[0])},
                           {"position": -1, "values": rounded(logits[-1])}]}
        if images:
            # The first row after the first image and a row inside it.
            first_end = seq.index(IMAGE_END)
            case["logits"].append({"position": first_end + 1, "values": rounded(logits[first_end + 1])})
            case["logits"].append({"position": seq.index(IMAGE) + 1, "values": rounded(logits[seq.index(IMAGE) + 1])})
        try:
            pos, delta = vmodel.model.get_rope_index(torch.tensor([seq]), grids, None, attention_mask=None)
            case["position_ids"] = pos[:, 0, :].tolist()
            case["rope_delta"] = int(delta.reshape(-1)[0])
        except Exception as e:  # the signature moved between releases; positions are then checked via logits only
            print(f"{name}: get_rope_index not recorded ({e})", file=sys.stderr)
        case["greedy"] = greedy(forward, seq, GREEDY_STEPS)
        goldens["models"].append(case)
        print(name, len(seq), "tokens", file=sys.stderr)

    head = [GMASK, SOP, USER]
    run_case("glm4v text only", [], [head + text_ids(20, 12) + [ASSISTANT]])
    run_case("glm4v one image", [(300, 200, 0)], [head, 0, text_ids(21, 9) + [ASSISTANT]])
    run_case("glm4v two images", [(150, 500, 1), (224, 112, 2)],
             [head, 0, text_ids(22, 5), 1, text_ids(23, 7) + [ASSISTANT]])

    with open(os.path.join(out, "goldens.json"), "w") as f:
        json.dump(goldens, f, indent=1)
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(out) for n in names)
    print(f"wrote {out} ({total / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
