#!/usr/bin/env python3
"""Goldens for the engine's Whisper front end (engine/audio/log_mel.cpp), from Transformers' own
WhisperFeatureExtractor on the fixtures' jfk.wav, for 80 and 128 mel bins: the features' sum, sum of squares and
values at chosen (mel, frame) positions, and the filterbank's sum. Written to tests/goldens/whisper/features.json,
which tests/engine/tst_model_voice.cpp reads (CI never runs this script).

    PYTHONPATH=~/.cache/hf-reference/site /usr/bin/python3 tools/hf-goldens/make_whisper_feature_goldens.py \
        ../shared/fixtures
"""
import json
import pathlib
import sys
import wave

import numpy as np
from transformers import WhisperFeatureExtractor

fixtures = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures")
out_path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "goldens" / "whisper" / "features.json"

with wave.open(str(fixtures / "audio" / "jfk.wav"), "rb") as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
audio = pcm.astype(np.float32) / 32768.0  # libsndfile's scaling of 16-bit PCM to float

positions = [(0, 0), (0, 100), (5, 50), (10, 300), (20, 500), (40, 700), (60, 900), (79, 1000), (30, 1090),
             (45, 1099), (12, 1100), (70, 1200), (3, 2999), (50, 1500), (25, 640)]
golden = {"source": "transformers " + __import__("transformers").__version__ + " WhisperFeatureExtractor",
          "samples": int(audio.size)}
for n_mels in (80, 128):
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    feats = fe(audio, sampling_rate=16000, return_tensors="np")["input_features"][0].astype(np.float64)
    assert feats.shape == (n_mels, 3000), feats.shape
    golden[str(n_mels)] = {
        "shape": list(feats.shape),
        "sum": float(feats.sum()),
        "sum_sq": float((feats ** 2).sum()),
        "max": float(feats.max()),
        "min": float(feats.min()),
        "filters_sum": float(np.asarray(fe.mel_filters, dtype=np.float64).sum()),
        "values": [[m, t, float(feats[m % n_mels, t])] for m, t in positions],
    }
out_path.write_text(json.dumps(golden, indent=1) + "\n")
print("wrote", out_path)
