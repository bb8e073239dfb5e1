// whisper.cpp's legacy ggml files as `wb transcribe -m` and `--vad-model` read them: the Whisper model reader
// (hyper-parameters, mel filterbank, vocabulary, tensor records) and the Silero VAD reader; a VAD that loads runs
// on two 32 ms windows. Seeds: the fixtures' for-tests-ggml-tiny.bin and silero-v6.2.0-ggml.bin (tools/fuzz.sh)
// and tests/fuzz/seeds/fuzz_ggml_audio (a tiny Whisper header with one tensor).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "audio/silero_vad.h"
#include "audio/whisper_ggml.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto bytes = std::make_shared<const std::vector<uint8_t>>(data, data + size);
    auto w = wb::audio::parseWhisperGgml(bytes, "fuzz whisper");
    if (w) {
        for (const auto& t : w->tensors)
            if (t.offset > size || size - t.offset < t.numBytes) __builtin_trap();
        wbfuzz::note("whisper ok");
    } else {
        wbfuzz::note(w.error().message);
    }
    auto v = wb::audio::SileroVad::parse(std::span<const uint8_t>(data, size), "fuzz vad");
    if (!v) return wbfuzz::note(v.error().message), 0;
    const std::vector<float> second(1024, 0.01f);  // two windows: the whole graph and the carried LSTM state
    const auto probs = v->probabilities(second);
    if (probs.size() != 2) __builtin_trap();
    (void)v->segments(probs);
    wbfuzz::note("vad ok");
    return 0;
}
