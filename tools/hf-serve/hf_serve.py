#!/usr/bin/env python3
"""A small OpenAI-compatible server over Hugging Face Transformers, for comparing this engine against the
reference framework as it runs without a serving layer (issue #18).

Endpoints: GET /v1/models, /health, /metrics; POST /v1/completions and /v1/chat/completions, streamed (SSE, with
a final usage chunk when stream_options.include_usage is true) or not. A completion prompt may be text or a list
of token ids (what `wb bench` sends, so every target sees the exact same prompt tokens). `ignore_eos: true` keeps
generating to max_tokens. temperature 0 (or absent) is greedy; > 0 samples from the softmax (optionally top_p),
seeded by `seed`.

How requests are served: STATIC BATCHES (text models; a vision-language model such as GLM-4.1V serves one
`model.generate` at a time, since its M-RoPE positions are generate's business). One worker thread owns the model. When it is idle it takes every waiting
request (up to --max-batch) as one batch: the prompts are left-padded into one tensor, prefilled together, and
decoded in lockstep by the model's own forward with its KV cache (what `model.generate` does for a greedy batch)
until the batch's longest request is done. Requests that arrive meanwhile wait for the next batch: there is no
continuous batching, no paged KV, no preemption. --max-batch 1 serves one generate at a time.

Memory: /metrics reports `hf_serve_peak_rss_bytes` (this process's peak resident set, getrusage ru_maxrss) and
`process_resident_memory_bytes` (current RSS, /proc/self/statm); /health returns the same numbers as JSON.

Tokenizer: AutoTokenizer when it loads. A folder holding only a SentencePiece tokenizer.model (the usual Llama
layout) needs the `sentencepiece` package for that; without it this file reads tokenizer.model itself (pieces,
scores, byte fallback: the Llama BPE-style SentencePiece model), enough to encode text and decode ids. Chat
messages go through the tokenizer's chat template when there is one, else their contents are joined by newlines.

Runs with the CPU kit (../shared/hf-reference: Transformers 4.57 on Debian's torch 1.13; attention is "eager",
the only one torch 1.13 has) and with a normal `pip install torch transformers`. Nothing is downloaded: the model
is a local folder. Standard library HTTP only.

    python3 tools/hf-serve/hf_serve.py --model DIR [--dtype float32|bfloat16|float16] [--port 8000] [--host H]
                                       [--threads N] [--max-batch 8] [--batch-wait-ms 20] [--name ID]

Prints "hf-serve: listening on http://HOST:PORT/v1" when ready (--port 0 picks a free port). SIGTERM or SIGINT
stops it cleanly (exit 0).
"""
import argparse
import json
import os
import queue
import resource
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY_BYTES = 8 << 20


class ApiError(Exception):
    def __init__(self, status, message, kind="invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


# --------------------------------------------------------------------------------------------------------------
# Memory figures of this process
def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def blas_library():
    """The BLAS shared library this process mapped (torch's FP32 matmuls go through it when torch was built with
    BLAS_INFO=generic, as Debian's python3-torch is): Debian's default libblas.so.3 alternative is the netlib
    reference BLAS, about ten times slower than OpenBLAS here, which makes FP32 Transformers look far worse than it
    is. A pip wheel of torch brings MKL instead."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1].lower() or "mkl" in line}
    except OSError:
        return "unknown"
    return ", ".join(sorted(l for l in libs if l.startswith("/"))) or "none mapped (MKL or oneDNN inside torch)"


def current_rss_bytes():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------------------------------------------
# A SentencePiece tokenizer.model reader (used only when Transformers' own tokenizer cannot be built)
def _varint(buf, pos):
    shift = result = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of one protobuf message; bytes for length-delimited, ints otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated field")
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, val


class SentencePieceModel:
    """Llama's SentencePiece (BPE type, byte fallback): repeatedly merge the adjacent pair whose concatenation is
    the highest-scoring piece; characters without a piece become <0xNN> byte tokens."""

    def __init__(self, path, bos_id=None, eos_id=None, add_bos=True):
        import struct
        data = open(path, "rb").read()
        self.pieces, self.scores, self.types = [], [], []
        for num, wt, val in _fields(data):
            if num != 1 or wt != 2:
                continue
            piece, score, typ = "", 0.0, 1
            for n2, w2, v2 in _fields(val):
                if n2 == 1 and w2 == 2:
                    piece = v2.decode("utf-8", "replace")
                elif n2 == 2 and w2 == 5:
                    score = struct.unpack("<f", v2)[0]
                elif n2 == 3 and w2 == 0:
                    typ = v2
            self.pieces.append(piece)
            self.scores.append(score)
            self.types.append(typ)
        if not self.pieces:
            raise ValueError(f"{path}: no pieces")
        self.index = {p: i for i, p in enumerate(self.pieces) if self.types[i] in (1, 4, 6)}
        self.byte_ids = {}
        for i, p in enumerate(self.pieces):
            if self.types[i] == 6 and len(p) == 6 and p.startswith("<0x"):
                self.byte_ids[int(p[3:5], 16)] = i
        self.unk_id = next((i for i, t in enumerate(self.types) if t == 2), 0)
        self.bos_token_id = bos_id if bos_id is not None else self.index.get("<s>", 1)
        self.eos_token_id = eos_id if eos_id is not None else 2
        self.add_bos = add_bos
        self.chat_template = None

    def __len__(self):
        return len(self.pieces)

    def encode(self, text, add_special_tokens=True):
        ids = [self.bos_token_id] if add_special_tokens and self.add_bos else []
        if not text:
            return ids
        symbols = list(("▁" + text.replace(" ", "▁")))
        while len(symbols) > 1:
            best, best_i = None, -1
            for i in range(len(symbols) - 1):
                pid = self.index.get(symbols[i] + symbols[i + 1])
                if pid is not None and (best is None or self.scores[pid] > best):
                    best, best_i = self.scores[pid], i
            if best_i < 0:
                break
            symbols[best_i:best_i + 2] = [symbols[best_i] + symbols[best_i + 1]]
        for s in symbols:
            pid = self.index.get(s)
            if pid is not None:
                ids.append(pid)
            else:
                ids.extend(self.byte_ids.get(b, self.unk_id) for b in s.encode("utf-8"))
        return ids

    def decode(self, ids, skip_special_tokens=True):
        out = bytearray()
        for i in ids:
            if not 0 <= i < len(self.pieces):
                continue
            t = self.types[i]
            if t == 6 and len(self.pieces[i]) == 6:
                out.append(int(self.pieces[i][3:5], 16))
            elif t in (2, 3, 5):
                if not skip_special_tokens:
                    out += self.pieces[i].encode("utf-8")
            else:
                out += self.pieces[i].replace("▁", " ").encode("utf-8")
        text = out.decode("utf-8", "replace")
        return text[1:] if text.startswith(" ") else text


# --------------------------------------------------------------------------------------------------------------
class Model:
    def __init__(self, args):
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM
        self.torch = torch
        if args.threads:
            torch.set_num_threads(args.threads)
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
        t0 = time.time()
        self.config = AutoConfig.from_pretrained(args.model)
        # A vision-language model (GLM-4.1V: Glm4vForConditionalGeneration) takes images in chat messages; its text
        # positions are M-RoPE, so its requests go through model.generate one at a time (see Worker.run_vision).
        self.vision = hasattr(self.config, "vision_config")
        self.image_processor = None
        if self.vision:
            from transformers import AutoImageProcessor, AutoModelForImageTextToText
            self.model = AutoModelForImageTextToText.from_pretrained(args.model, torch_dtype=dtype,
                                                                     attn_implementation="eager")
            # torch 1.13 has no scaled_dot_product_attention: every sub-model (the vision tower too) runs eager.
            for module in self.model.modules():
                cfg = getattr(module, "config", None)
                if cfg is not None and hasattr(cfg, "_attn_implementation"):
                    cfg._attn_implementation = "eager"
            self.image_processor = AutoImageProcessor.from_pretrained(args.model, use_fast=False)
            self.image_token_id = int(self.config.image_token_id)
            self.merge = int(getattr(self.config.vision_config, "spatial_merge_size", 2))
        else:
            self.model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype,
                                                              attn_implementation="eager")
        self.model.eval()
        self.load_seconds = time.time() - t0
        self.dtype = args.dtype
        self.versions = {"transformers": transformers.__version__, "torch": torch.__version__}
        self.blas = blas_library()
        if "/blas/libblas.so" in self.blas:
            print("hf-serve: warning: FP32 matmuls run on the reference BLAS (%s); set LD_LIBRARY_PATH to an "
                  "OpenBLAS libblas.so.3 folder for a fair FP32 figure (tools/hf-serve/README.md)" % self.blas,
                  file=sys.stderr, flush=True)
        text_cfg = getattr(self.config, "text_config", self.config)
        self.max_len = int(getattr(text_cfg, "max_position_embeddings", 0) or 1 << 30)
        self.vocab = int(text_cfg.vocab_size)
        self.tokenizer, self.tokenizer_kind = self._tokenizer(args.model)
        eos = getattr(self.config, "eos_token_id", None)
        if eos is None:
            eos = getattr(text_cfg, "eos_token_id", None)
        self.eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])

    def _tokenizer(self, folder):
        try:
            from transformers import AutoTokenizer
            return AutoTokenizer.from_pretrained(folder), "transformers"
        except Exception as e:  # noqa: BLE001 (any failure: fall back to the reader below, or to ids only)
            spm = os.path.join(folder, "tokenizer.model")
            if os.path.exists(spm):
                cfg = {}
                try:
                    cfg = json.load(open(os.path.join(folder, "tokenizer_config.json")))
                except (OSError, ValueError):
                    pass
                return (SentencePieceModel(spm, getattr(self.config, "bos_token_id", None),
                                           getattr(self.config, "eos_token_id", None), cfg.get("add_bos_token", True)),
                        f"tokenizer.model read by hf_serve.py (AutoTokenizer failed: {str(e).splitlines()[0][:120]})")
            return None, f"none (token-id prompts only): {str(e).splitlines()[0][:120]}"

    def encode_prompt(self, prompt):
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (list, str)):
            prompt = prompt[0]
        if isinstance(prompt, list):
            if not prompt or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
                raise ApiError(400, "prompt must be a string or a non-empty list of token ids")
            bad = [t for t in prompt if not 0 <= t < self.vocab]
            if bad:
                raise ApiError(400, f"token id {bad[0]} is outside the vocabulary (0..{self.vocab - 1})")
            return list(prompt)
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ApiError(400, "this model folder has no tokenizer: send the prompt as token ids")
            return list(self.tokenizer.encode(prompt))
        raise ApiError(400, "prompt must be a string or a list of token ids")

    def encode_chat(self, messages):
        """(prompt ids, images: None or the processor's pixel_values and image_grid_thw)."""
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages must be a non-empty array")
        if self.tokenizer is None:
            raise ApiError(400, "this model folder has no tokenizer: chat needs one")
        norm, images = [], []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise ApiError(400, "each message needs a role and content")
            c = m.get("content", "")
            if isinstance(c, list):
                parts = []
                for p in c:
                    if not isinstance(p, dict):
                        raise ApiError(400, "content parts must be objects")
                    if p.get("type") == "text" and isinstance(p.get("text"), str):
                        parts.append({"type": "text", "text": p["text"]})
                    elif p.get("type") == "image_url" and self.vision:
                        images.append(decode_image_url(p.get("image_url")))
                        parts.append({"type": "image"})
                    else:
                        raise ApiError(400, f"content part type {p.get('type')!r} is not supported "
                                            f"({'text and image_url' if self.vision else 'text only'})")
                c = parts if images else "".join(x["text"] for x in parts)
            if not isinstance(c, (str, list)):
                raise ApiError(400, "message content must be a string or content parts")
            norm.append({"role": m["role"], "content": c})
        if images and not getattr(self.tokenizer, "chat_template", None):
            raise ApiError(400, "images need the model's chat template, and this tokenizer has none")
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(norm, add_generation_prompt=True, tokenize=True)
            ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
        else:
            ids = list(self.tokenizer.encode("\n".join(m["content"] for m in norm)))
        if not images:
            return ids, None
        # The template writes one image token per image; each becomes the image's merged-patch count (what
        # Glm4vProcessor does, which cannot be built without torchvision).
        feats = self.image_processor(images=images, return_tensors="pt")
        grid = feats["image_grid_thw"]
        counts = [int(g.prod()) // (self.merge * self.merge) for g in grid]
        if ids.count(self.image_token_id) != len(counts):
            raise ApiError(400, f"the template placed {ids.count(self.image_token_id)} image slots for "
                                f"{len(counts)} images")
        out, k = [], 0
        for t in ids:
            if t == self.image_token_id:
                out += [t] * counts[k]
                k += 1
            else:
                out.append(t)
        return out, {"pixel_values": feats["pixel_values"].to(self.model.dtype), "image_grid_thw": grid}

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True) if self.tokenizer is not None else ""


def decode_image_url(spec):
    """A data: URL (base64 PNG/JPEG) as a PIL RGB image; remote URLs are refused (nothing is downloaded)."""
    import base64
    import io
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url[:64]:
        raise ApiError(400, "image_url must be a data: URL with base64 PNG or JPEG bytes (nothing is downloaded)")
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
        from PIL import Image
        img = Image.open(io.BytesIO(raw))
        if img.format not in ("PNG", "JPEG"):
            raise ValueError(f"{img.format} is not PNG or JPEG")
        if img.width * img.height > 64 << 20:
            raise ValueError(f"{img.width}x{img.height} is too large")
        return img.convert("RGB")
    except ApiError:
        raise
    except Exception as e:  # noqa: BLE001 (any decoding failure is the client's bad image)
        raise ApiError(400, f"cannot decode the image: {e}")


class Job:
    def __init__(self, ids, max_tokens, ignore_eos, temperature, top_p, seed, stop_ids, images=None):
        self.images = images
        self.ids, self.max_tokens, self.ignore_eos = ids, max_tokens, ignore_eos
        self.temperature, self.top_p, self.seed, self.stop_ids = temperature, top_p, seed, stop_ids
        self.events = queue.Queue()  # ("token", id) ... then ("done", finish_reason) or ("error", message)
        self.generated = []


class Worker(threading.Thread):
    """Owns the model: takes up to max_batch waiting jobs, runs them as one static batch, repeats."""

    def __init__(self, model, max_batch, wait_ms):
        super().__init__(daemon=True, name="hf-serve-worker")
        self.m, self.max_batch, self.wait_s = model, max_batch, wait_ms / 1000.0
        self.jobs = queue.Queue()
        self.stopping = threading.Event()
        self.batches = self.requests = self.tokens = 0

    def submit(self, job):
        self.jobs.put(job)

    def run(self):
        while not self.stopping.is_set():
            try:
                first = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            if self.m.vision:
                try:
                    self.run_vision(first)
                except Exception as e:  # noqa: BLE001
                    first.events.put(("error", f"generation failed: {type(e).__name__}: {e}"))
                continue
            batch = [first]
            deadline = time.time() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.jobs.get(timeout=max(0.0, deadline - time.time())))
                except queue.Empty:
                    break
            try:
                self.run_batch(batch)
            except Exception as e:  # noqa: BLE001 (the error travels to each request; the server lives on)
                for j in batch:
                    j.events.put(("error", f"generation failed: {type(e).__name__}: {e}"))

    def run_batch(self, batch):
        torch = self.m.torch
        model = self.m.model
        n = len(batch)
        width = max(len(j.ids) for j in batch)
        pad = 0
        input_ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, j in enumerate(batch):  # left padding: every row's last prompt token is in the last column
            input_ids[r, width - len(j.ids):] = torch.tensor(j.ids, dtype=torch.long)
            mask[r, width - len(j.ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        gens = [torch.Generator().manual_seed(int(j.seed)) if j.seed is not None else None for j in batch]
        active = [True] * n
        steps = max(j.max_tokens for j in batch)
        past = None
        self.batches += 1
        self.requests += n
        with torch.no_grad():
            for step in range(steps):
                if step == 0:
                    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True)
                else:
                    out = model(input_ids=nxt.unsqueeze(-1), attention_mask=mask, position_ids=positions[:, -1:],
                                past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[:, -1, :].float()
                nxt = torch.empty(n, dtype=torch.long)
                for r, j in enumerate(batch):
                    nxt[r] = self.pick(logits[r], j, gens[r]) if active[r] else pad
                for r, j in enumerate(batch):
                    if not active[r]:
                        continue
                    tok = int(nxt[r])
                    j.generated.append(tok)
                    j.events.put(("token", tok))
                    self.tokens += 1
                    if not j.ignore_eos and (tok in self.m.eos_ids or tok in j.stop_ids):
                        active[r] = False
                        j.events.put(("done", "stop"))
                    elif len(j.generated) >= j.max_tokens:
                        active[r] = False
                        j.events.put(("done", "length"))
                if not any(active):
                    break
                mask = torch.cat([mask, torch.ones((n, 1), dtype=torch.long)], dim=1)
                positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)

    def run_vision(self, job):
        """One request through model.generate (greedy, or sampling with the request's temperature / top_p), its
        tokens handed to the request as generate produces them."""
        torch = self.m.torch
        worker = self

        class Streamer:
            def __init__(self):
                self.prompt_seen = False

            def put(self, value):
                if not self.prompt_seen:  # generate hands over the prompt first
                    self.prompt_seen = True
                    return
                for tok in value.reshape(-1).tolist():
                    job.generated.append(int(tok))
                    job.events.put(("token", int(tok)))
                    worker.tokens += 1

            def end(self):
                pass

        ids = torch.tensor([job.ids], dtype=torch.long)
        kw = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=job.max_tokens,
                  streamer=Streamer(), do_sample=bool(job.temperature and job.temperature > 0))
        if kw["do_sample"]:
            kw["temperature"] = job.temperature
            if job.top_p:
                kw["top_p"] = job.top_p
            if job.seed is not None:
                torch.manual_seed(int(job.seed))
        if job.ignore_eos:
            kw["min_new_tokens"] = job.max_tokens
        if job.images:
            kw.update(job.images)
        self.batches += 1
        self.requests += 1
        with torch.no_grad():
            self.m.model.generate(**kw)
        job.events.put(("done", "length" if len(job.generated) >= job.max_tokens else "stop"))

    def pick(self, logits, job, gen):
        torch = self.m.torch
        if not job.temperature or job.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / job.temperature, dim=-1)
        if job.top_p is not None and 0 < job.top_p < 1:
            sp, si = torch.sort(probs, descending=True)
            keep = sp.cumsum(-1) - sp < job.top_p
            probs = torch.zeros_like(probs).scatter(0, si[keep], sp[keep])
        return int(torch.multinomial(probs, 1, generator=gen))


# --------------------------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hf-serve/1.0"

    def log_message(self, fmt, *a):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("hf-serve: " + fmt % a + "\n")

    # -- plumbing
    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, e):
        self.send_json(e.status, {"error": {"message": e.message, "type": e.kind, "code": e.status}})

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def sse(self, obj):
        self.chunk(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")

    def do_GET(self):
        s = self.server
        path = self.path.split("?")[0]
        if path in ("/v1/models", "/models"):
            self.send_json(200, {"object": "list", "data": [{
                "id": s.name, "object": "model", "created": int(s.started), "owned_by": "transformers",
                "dtype": s.model.dtype, "max_model_len": s.model.max_len, "peak_rss_bytes": peak_rss_bytes()}]})
        elif path == "/health":
            self.send_json(200, {"status": "ok", "model": s.name, "dtype": s.model.dtype,
                                 "serving": f"static batches of up to {s.worker.max_batch}",
                                 "tokenizer": s.model.tokenizer_kind, "versions": s.model.versions, "blas": s.model.blas,
                                 "torch_threads": s.model.torch.get_num_threads(),
                                 "peak_rss_bytes": peak_rss_bytes(), "rss_bytes": current_rss_bytes(),
                                 "load_seconds": round(s.model.load_seconds, 3)})
        elif path == "/metrics":
            w = s.worker
            lines = ["# HELP hf_serve_peak_rss_bytes Peak resident set size of the server process (getrusage).",
                     "# TYPE hf_serve_peak_rss_bytes gauge", f"hf_serve_peak_rss_bytes {peak_rss_bytes()}"]
            rss = current_rss_bytes()
            if rss is not None:
                lines += ["# TYPE process_resident_memory_bytes gauge", f"process_resident_memory_bytes {rss}"]
            lines += ["# TYPE hf_serve_batches_total counter", f"hf_serve_batches_total {w.batches}",
                      "# TYPE hf_serve_requests_total counter", f"hf_serve_requests_total {w.requests}",
                      "# TYPE hf_serve_generated_tokens_total counter", f"hf_serve_generated_tokens_total {w.tokens}"]
            body = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error_json(ApiError(404, f"no route for GET {path}", "not_found"))

    def do_POST(self):
        path = self.path.split("?")[0]
        try:
            if path not in ("/v1/completions", "/v1/chat/completions", "/completions", "/chat/completions"):
                raise ApiError(404, f"no route for POST {path}", "not_found")
            try:
                length = int(self.headers.get("Content-Length", "-1"))
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                raise ApiError(413 if length > MAX_BODY_BYTES else 411,
                               "the body needs a Content-Length of at most %d bytes" % MAX_BODY_BYTES)
            try:
                req = json.loads(self.rfile.read(length) or b"null")
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(400, f"the body is not JSON: {e}")
            if not isinstance(req, dict):
                raise ApiError(400, "the body must be a JSON object")
            self.complete(req, chat=path.endswith("chat/completions"))
        except ApiError as e:
            self.send_error_json(e)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def complete(self, req, chat):
        s = self.server
        m = s.model
        images = None
        if chat:
            ids, images = m.encode_chat(req.get("messages"))
        else:
            ids = m.encode_prompt(req.get("prompt"))
        max_tokens = req.get("max_completion_tokens", req.get("max_tokens", 16 if not chat else None))
        if max_tokens is None:
            max_tokens = m.max_len - len(ids)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(400, "max_tokens must be a positive integer")
        if len(ids) + max_tokens > m.max_len:
            raise ApiError(400, f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the model's "
                                f"context of {m.max_len}")
        temperature = req.get("temperature", 0) or 0
        top_p = req.get("top_p")
        seed = req.get("seed")
        for name, v in (("temperature", temperature), ("top_p", top_p)):
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                raise ApiError(400, f"{name} must be a non-negative number")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ApiError(400, "seed must be an integer")
        stream = bool(req.get("stream", False))
        opts = req.get("stream_options") or {}
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage", False))
        job = Job(ids, max_tokens, bool(req.get("ignore_eos", False)), float(temperature), top_p,
                  seed, set(), images)
        s.worker.submit(job)

        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk_of(text, finish):
            if chat:
                return {"id": rid, "object": obj, "created": created, "model": s.name,
                        "choices": [{"index": 0, "delta": {"content": text} if text else {},
                                     "finish_reason": finish}]}
            return {"id": rid, "object": obj, "created": created, "model": s.name,
                    "choices": [{"index": 0, "text": text, "finish_reason": finish}]}

        sent_text = ""
        seen = 0  # tokens whose events this handler has taken
        finish = None
        if stream:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if chat:
                self.sse({"id": rid, "object": obj, "created": created, "model": s.name,
                          "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "finish_reason": None}]})
        while finish is None:
            kind, val = job.events.get()
            if kind == "error":
                if stream:
                    self.sse({"error": {"message": val, "type": "server_error"}})
                    self.sse(b"[DONE]")
                    self.chunk(b"")
                    return
                raise ApiError(500, val, "server_error")
            if kind == "done":
                finish = val
                break
            seen += 1
            if stream:
                # Up to this event's token, not all of job.generated: a handler that falls behind the generation
                # (a loaded machine) would otherwise send several tokens as one chunk and nothing for the next events.
                text = m.decode(job.generated[:seen])
                # Hold back an incomplete UTF-8 sequence (decoded as U+FFFD) until its last byte arrives.
                if text.startswith(sent_text) and not text.endswith("\ufffd") and len(text) > len(sent_text):
                    self.sse(chunk_of(text[len(sent_text):], None))
                    sent_text = text
                elif m.tokenizer is None:
                    pass
        text = m.decode(job.generated)
        usage = {"prompt_tokens": len(ids), "completion_tokens": len(job.generated),
                 "total_tokens": len(ids) + len(job.generated)}
        if stream:
            tail = text[len(sent_text):] if text.startswith(sent_text) else ""
            self.sse(chunk_of(tail, finish))
            if include_usage:
                self.sse({"id": rid, "object": obj, "created": created, "model": s.name, "choices": [],
                          "usage": usage})
            self.sse(b"[DONE]")
            self.chunk(b"")
            return
        choice = {"index": 0, "finish_reason": finish}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        self.send_json(200, {"id": rid, "object": "chat.completion" if chat else "text_completion",
                             "created": created, "model": s.name, "choices": [choice], "usage": usage})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a Transformers model folder (config.json + weights)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--max-batch", type=int, default=8, help="requests per static batch (1: one at a time)")
    ap.add_argument("--batch-wait-ms", type=float, default=20.0,
                    help="how long an idle worker waits for more requests to join a batch")
    ap.add_argument("--name", help="the model id served (default: the folder's name)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.max_batch < 1:
        ap.error("--max-batch must be at least 1")
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        sys.exit(f"hf-serve: {args.model}: no config.json (a Transformers model folder is needed)")
    try:
        model = Model(args)
    except Exception as e:  # noqa: BLE001
        sys.exit(f"hf-serve: cannot load {args.model}: {type(e).__name__}: {e}")
    worker = Worker(model, args.max_batch, args.batch_wait_ms)
    worker.start()
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    httpd.model, httpd.worker, httpd.verbose, httpd.started = model, worker, args.verbose, time.time()
    httpd.name = args.name or os.path.basename(os.path.abspath(args.model))

    def stop(*_):
        worker.stopping.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = httpd.server_address[:2]
    print(f"hf-serve: {httpd.name} ({model.dtype}, transformers {model.versions['transformers']}, torch "
          f"{model.versions['torch']}, BLAS: {model.blas}, tokenizer: {model.tokenizer_kind}, static batches of up to "
          f"{args.max_batch})",
          flush=True)
    print(f"hf-serve: listening on http://{host}:{port}/v1", flush=True)
    httpd.serve_forever(poll_interval=0.2)
    httpd.server_close()
    print("hf-serve: stopped", flush=True)


if __name__ == "__main__":
    main()
