#!/usr/bin/env python3
"""Writes tests/fuzz/seeds/fuzz_gguf/tiny_glm4_pair.gguf: one small GGUF v3 file holding both halves of llama.cpp's
GLM-4.1V pair (the glm4 text keys and tensors, and the clip.* keys and v.* tensors of a glm4v mmproj), so that
fuzz_gguf's GLM path (glmConfigFromGguf on both, openGlmGguf with the file as text and mmproj) starts from a file
it accepts. Deterministic; standard library only:  python3 tools/fuzz-seeds/make_glm_gguf_seed.py"""
import os
import struct

U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9
kv = []


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def put(key, typ, payload):
    kv.append(s(key) + struct.pack("<I", typ) + payload)


def u32(k, v): put(k, U32, struct.pack("<I", v))
def f32(k, v): put(k, F32, struct.pack("<f", v))
def text(k, v): put(k, STR, s(v))
def flag(k, v): put(k, BOOL, struct.pack("<B", 1 if v else 0))
def arr(k, typ, vals):
    body = struct.pack("<IQ", typ, len(vals))
    for v in vals:
        body += s(v) if typ == STR else struct.pack({I32: "<i", F32: "<f"}[typ], v)
    put(k, ARR, body)


text("general.architecture", "glm4")
u32("general.alignment", 32)
for k, v in [("embedding_length", 8), ("block_count", 1), ("feed_forward_length", 4), ("attention.head_count", 2),
             ("attention.head_count_kv", 1), ("attention.key_length", 4), ("context_length", 64),
             ("rope.dimension_count", 2)]:
    u32("glm4." + k, v)
f32("glm4.attention.layer_norm_rms_epsilon", 1e-5)
f32("glm4.rope.freq_base", 10000.0)
arr("glm4.rope.dimension_sections", I32, [1, 0, 0, 0])
tokens = ["a", "b", "<|endoftext|>", "[gMASK]", "<|user|>", "<|image|>", "<|begin_of_image|>", "<|end_of_image|>"]
text("tokenizer.ggml.model", "gpt2")
text("tokenizer.ggml.pre", "glm4")
arr("tokenizer.ggml.tokens", STR, tokens)
arr("tokenizer.ggml.token_type", I32, [1, 1, 3, 3, 3, 3, 3, 3])
arr("tokenizer.ggml.merges", STR, ["a b"])
u32("tokenizer.ggml.eos_token_id", 2)
u32("tokenizer.ggml.bos_token_id", 3)
u32("tokenizer.ggml.eot_token_id", 4)
text("clip.projector_type", "glm4v")
flag("clip.has_vision_encoder", True)
for k, v in [("block_count", 1), ("embedding_length", 4), ("attention.head_count", 1), ("patch_size", 2),
             ("image_size", 4), ("projection_dim", 8), ("feed_forward_length", 4), ("spatial_merge_size", 2)]:
    u32("clip.vision." + k, v)
arr("clip.vision.image_mean", F32, [0.5, 0.5, 0.5])
arr("clip.vision.image_std", F32, [0.25, 0.25, 0.25])

# (name, PyTorch shape); F32, values i / 16.
tensors = [("token_embd.weight", [8, 8]), ("blk.0.attn_q.weight", [8, 8]), ("blk.0.attn_q.bias", [8]),
           ("output.weight", [8, 8]), ("v.patch_embd.weight", [4, 3, 2, 2]), ("v.patch_embd.weight.1", [4, 3, 2, 2]),
           ("v.position_embd.weight", [4, 4]), ("v.blk.0.attn_qkv.weight", [12, 4])]
infos, data = b"", b""
for name, shape in tensors:
    n = 1
    for d in shape:
        n *= d
    while len(data) % 32:
        data += b"\0"
    infos += s(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in reversed(shape))
    infos += struct.pack("<IQ", 0, len(data))
    data += b"".join(struct.pack("<f", (i % 16) / 16.0) for i in range(n))

head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv) + infos
head += b"\0" * ((-len(head)) % 32)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/fuzz/seeds/fuzz_gguf/tiny_glm4_pair.gguf")
with open(out, "wb") as f:
    f.write(head + data)
print(os.path.normpath(out), len(head + data), "bytes")
