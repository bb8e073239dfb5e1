#!/usr/bin/env python3
"""HF Transformers on the shapes wb-bench-device measures, in the same run: the baseline of issue #5's goals.

Builds a random-weight LlamaForCausalLM of the 1B (TinyLlama: dim 2048, 22 layers, FFN 5632, 32/4 heads, vocab
32000) or 7B (Llama-2: 4096, 32, 11008, 32/32) shape on the GPU, the same shapes as `wb-make-model --preset 1b|7b`,
and measures with plain `model.generate` (static batching, greedy, EOS ignored, the KV cache HF picks by default):
  - TTFT of a 128-token prompt (prefill + the first token, batch 1)
  - batch-1 decode tokens/s over --decode tokens
  - throughput at each concurrency: N prompts of 128 tokens generating --decode tokens together, generated
    tokens / wall time (HF has no continuous batching: a batch is the natural equivalent of N concurrent requests)
Precisions: fp16, bf16, and int8 when bitsandbytes is installed (LLM.int8 weight-only; reported as unavailable
otherwise). Prints a table and, with --json FILE, writes the figures.

Nothing is downloaded (random weights from the config). Usage:
    python3 tools/hf-bench/hf_throughput.py --shape 1b --precision fp16 --concurrency 1,4,8,16,64 --json out.json
"""
import argparse
import json
import sys
import time

SHAPES = {
    "1b": dict(hidden_size=2048, num_hidden_layers=22, intermediate_size=5632, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048),
    "7b": dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=11008, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1b")
    ap.add_argument("--precision", choices=["fp16", "bf16", "int8"], default="fp16")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--concurrency", default="1,4,8,16,64")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    if not torch.cuda.is_available():
        sys.exit("hf_throughput: no CUDA device")
    dev = torch.device("cuda")
    torch.manual_seed(0)
    cfg = LlamaConfig(**SHAPES[args.shape], rms_norm_eps=1e-5, tie_word_embeddings=False)
    out = {"shape": args.shape, "precision": args.precision, "transformers": transformers.__version__,
           "torch": torch.__version__, "device": torch.cuda.get_device_name(0), "prompt": args.prompt,
           "decode": args.decode}
    if args.precision == "int8":
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except Exception as e:  # noqa: BLE001
            out["unavailable"] = f"int8 needs bitsandbytes: {e}"
            print(json.dumps(out))
            if args.json:
                json.dump(out, open(args.json, "w"), indent=1)
            return
        model = LlamaForCausalLM(cfg).half()
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            del model
            model = LlamaForCausalLM.from_pretrained(
                d, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map={"": 0})
    else:
        dtype = torch.float16 if args.precision == "fp16" else torch.bfloat16
        with torch.device(dev):
            model = LlamaForCausalLM(cfg).to(dtype)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    out["parameters"] = params
    gen = dict(do_sample=False, min_new_tokens=args.decode, max_new_tokens=args.decode, pad_token_id=0,
               eos_token_id=None)

    def prompts(n):
        g = torch.Generator(device="cpu").manual_seed(n)
        return torch.randint(10, cfg.vocab_size, (n, args.prompt), generator=g).to(dev)

    def timed(fn):
        torch.cuda.synchronize()
        t = time.perf_counter()
        r = fn()
        torch.cuda.synchronize()
        return r, time.perf_counter() - t

    with torch.inference_mode():
        x = prompts(1)
        # Warm-up at the full length: after an 8-token warm-up the first 128-token run on an H100 (2026-12-05) still
        # ran at 31 tokens/s where the concurrency-1 run after it gave 111 (clocks, allocator, cache growth).
        model.generate(x, **gen)
        _, ttft = timed(lambda: model.generate(x, **dict(gen, min_new_tokens=1, max_new_tokens=1)))
        _, full = timed(lambda: model.generate(x, **gen))
        out["ttft_ms"] = ttft * 1e3
        out["decode_tokens_per_s_batch1"] = (args.decode - 1) / max(full - ttft, 1e-9)
        out["throughput"] = {}
        for n in [int(c) for c in args.concurrency.split(",") if c]:
            try:
                xb = prompts(n)
                r, dt = timed(lambda: model.generate(xb, **gen))
                generated = int((r.shape[1] - args.prompt) * n)
                out["throughput"][str(n)] = generated / dt
            except torch.cuda.OutOfMemoryError:
                out["throughput"][str(n)] = "out of memory"
                torch.cuda.empty_cache()
    out["peak_vram_bytes"] = torch.cuda.max_memory_allocated()
    print(f"HF Transformers {out['transformers']} on {out['device']}: {args.shape} {args.precision}, "
          f"{params / 1e9:.2f}B parameters")
    print(f"  TTFT ({args.prompt}-token prompt)     {out['ttft_ms']:10.2f} ms")
    print(f"  batch-1 decode               {out['decode_tokens_per_s_batch1']:10.2f} tokens/s")
    for n, v in out["throughput"].items():
        print(f"  throughput concurrency {n:<4}  " + (f"{v:10.2f} generated tokens/s" if isinstance(v, float) else v))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
