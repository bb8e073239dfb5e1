#!/usr/bin/env python3
"""Goldens for the engine's Whisper (engine/models/whisper) from Transformers' WhisperForConditionalGeneration
(eager attention) on the tiny random Whisper that wb-make-whisper writes, with the fixtures' jfk.wav:
features checksum, encoder output at chosen frames, logits of the first decoder steps, plain greedy tokens,
greedy tokens with timestamps (generate(return_timestamps=True)), the detected language, beam search
(generate(num_beams=5), with and without timestamps: tokens and sequences_scores) and what the temperature
fallback looks at (the compression ratio and average log-probability of a decoding, the no-speech probability).
Written to tests/goldens/whisper/tiny-random.json, which tests/engine/tst_model_whisper.cpp reads (CI never runs
this script; the test rebuilds the same model with the same arguments and compares).

    build-ci/engine/wb-make-whisper --vocab-from ../shared/fixtures/audio/for-tests-ggml-tiny.bin \
        --hf /tmp/wh/hf --ggml /tmp/wh/ggml-tiny-random.bin --d 64 --layers 2 --heads 2 --seed 1
    PYTHONPATH=~/.cache/hf-reference/site /usr/bin/python3 tools/hf-goldens/make_whisper_goldens.py \
        /tmp/wh/hf ../shared/fixtures
"""
import json
import pathlib
import sys
import wave

import numpy as np
import torch
from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

hf_dir = sys.argv[1]
fixtures = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/fixtures")
out_path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "goldens" / "whisper" / "tiny-random.json"

with wave.open(str(fixtures / "audio" / "jfk.wav"), "rb") as w:
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
audio = pcm.astype(np.float32) / 32768.0

fe = WhisperFeatureExtractor.from_pretrained(hf_dir)
feats = fe(audio, sampling_rate=16000, return_tensors="pt")["input_features"]
model = WhisperForConditionalGeneration.from_pretrained(hf_dir, attn_implementation="eager").eval()
cfg = model.config
SOT, EOT = cfg.decoder_start_token_id, cfg.eos_token_id
EN, TRANSCRIBE, NOTS = SOT + 1, SOT + 1 + 99 + 1, SOT + 1 + 99 + 5

golden = {"made_with": "wb-make-whisper --d 64 --layers 2 --heads 2 --mels 80 --seed 1",
          "source": "transformers " + __import__("transformers").__version__ + " WhisperForConditionalGeneration eager",
          "features_sum": float(feats.double().sum())}
with torch.no_grad():
    enc = model.model.encoder(feats).last_hidden_state[0]
    frames = [0, 1, 2, 100, 550, 749, 750, 1200, 1499]
    golden["encoder"] = {"shape": list(enc.shape), "sum": float(enc.double().sum()),
                         "frames": {str(f): [float(x) for x in enc[f, :16]] for f in frames}}
    prompt = [SOT, EN, TRANSCRIBE, NOTS]
    steps = []
    ids = list(prompt)
    for step in range(4):
        logits = model(input_features=feats, decoder_input_ids=torch.tensor([ids])).logits[0, -1].double()
        top = torch.topk(logits, 8)
        steps.append({"input": list(ids), "sum": float(logits.sum()), "top_ids": [int(i) for i in top.indices],
                      "top_values": [float(v) for v in top.values],
                      "values": {str(i): float(logits[i]) for i in [0, 220, 1000, EOT, SOT, NOTS, 50364, 51864]}})
        ids.append(int(top.indices[0]))
    golden["logits"] = steps
    # Plain greedy (argmax, no logits processors) from the same prompt, 24 tokens or to <|endoftext|>.
    ids = list(prompt)
    for _ in range(24):
        nxt = int(model(input_features=feats, decoder_input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        ids.append(nxt)
        if nxt == EOT:
            break
    golden["greedy_plain"] = {"prompt": prompt, "tokens": ids[len(prompt):]}
    try:
        lang = model.detect_language(input_features=feats)
        golden["language_token"] = int(lang[0])
    except Exception as e:  # noqa: BLE001 - recorded, the test then skips this check
        golden["language_error"] = repr(e)
    try:
        out = model.generate(feats, language="en", task="transcribe", return_timestamps=True, max_new_tokens=40,
                             do_sample=False, num_beams=1)
        golden["greedy_timestamps"] = {"tokens": [int(t) for t in out[0]]}
    except Exception as e:  # noqa: BLE001
        golden["greedy_timestamps_error"] = repr(e)
    # Beam search (num_beams=5, Transformers' defaults: length_penalty 1.0, early_stopping False) with the
    # Whisper logits processors; no fallback (temperature unset), so the decoding is deterministic.
    NOSPEECH = SOT + 1 + 99 + 4
    # (With timestamps generate returns segments, not scores: the tokens alone.)
    for key, ts in (("beam5_timestamps", True), ("beam5_notimestamps", False)):
        try:
            out = model.generate(feats, language="en", task="transcribe", return_timestamps=ts, max_new_tokens=40,
                                 do_sample=False, num_beams=5, return_dict_in_generate=not ts, output_scores=not ts)
            seq = out if ts else out["sequences"]
            golden[key] = {"tokens": [int(t) for t in seq[0]]}
            if not ts:
                golden[key]["sequences_score"] = float(out["sequences_scores"][0])
        except Exception as e:  # noqa: BLE001
            golden[key + "_error"] = repr(e)
    # The fallback's inputs for the greedy decoding without timestamps: Transformers' own helpers on its tokens
    # (<|endoftext|> kept, as generate_with_fallback keeps it) and scores; the no-speech probability as
    # WhisperNoSpeechDetection computes it (softmax of the logits after <|startoftranscript|>). Without timestamps
    # the engine suppresses the timestamp tokens as whisper.cpp does (Transformers leaves them in): the same
    # suppression is asked of generate() here, so that the scores are over the same tokens.
    try:
        ts_begin = NOTS + 1
        suppress = list(model.generation_config.suppress_tokens or []) + list(range(ts_begin, cfg.vocab_size))
        out = model.generate(feats, language="en", task="transcribe", return_timestamps=False, max_new_tokens=40,
                             do_sample=False, num_beams=1, return_dict_in_generate=True, output_scores=True,
                             suppress_tokens=suppress)
        seq = out["sequences"][0]
        gen = seq[-len(out["scores"]):]
        cr = WhisperForConditionalGeneration._retrieve_compression_ratio(gen, cfg.vocab_size)
        lp = WhisperForConditionalGeneration._retrieve_avg_logprobs([s[0] for s in out["scores"]], gen, 0.0)
        sot_logits = model(input_features=feats, decoder_input_ids=torch.tensor([[SOT]])).logits[0, -1]
        golden["fallback_inputs"] = {"generated": [int(t) for t in gen], "compression_ratio": float(cr),
                                     "avg_logprob": float(lp),
                                     "no_speech_prob": float(sot_logits.float().softmax(-1)[NOSPEECH])}
    except Exception as e:  # noqa: BLE001
        golden["fallback_inputs_error"] = repr(e)
out_path.write_text(json.dumps(golden, indent=1) + "\n")
print("wrote", out_path)
print(json.dumps({k: golden[k] for k in golden if k.startswith(("greedy", "language", "beam", "fallback"))}))
