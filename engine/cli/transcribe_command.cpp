// `wb transcribe FILE [--vad-model SILERO] [--vad-only] [--json] [-m WHISPER]`: speech in an audio file. With
// --vad-only it prints the speech segments the Silero VAD finds (seconds); docs/VOICE.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "api/speech.h"
#include "cli/commands.h"

using nlohmann::json;

namespace wb::cli {

namespace {

const char* kTranscribeUsage = R"(usage: wb transcribe FILE [options]

  FILE                  WAV, FLAC, OGG Vorbis or MP3 (resampled to 16 kHz mono)
  --vad-model PATH      Silero VAD in whisper.cpp's ggml layout (e.g. ggml-silero-v6.2.0.bin)
  --vad-only            print the speech segments alone (needs --vad-model)
  --vad-threshold P     speech probability threshold (default 0.5)
  -m, --model PATH      Whisper model (HF folder or whisper.cpp ggml-*.bin): prints segments
                        "[start --> end] text" (with timestamps); with --vad-model the speech is
                        trimmed and cut at pauses into <= 30 s windows
  -l, --language CODE   en, de, ... (default: detected)
  -t, --threads N       CPU threads (default: all cores)
  --no-timestamps       one segment per 30 s window (<|notimestamps|> in the prompt)
  -n, --max-tokens N    tokens per 30 s window at most (default 224)
  -bs, --beam-size N    beam search with N beams (default 5, as whisper.cpp's whisper-cli; 1: greedy)
  --temperature T       first decoding temperature (default 0; > 0 samples)
  -nf, --no-fallback    no temperature fallback (default: +0.2 up to 1.0 while the compression ratio
                        is > 2.4 or the mean log-probability < -1.0)
  --seed N              sampling seed (default 0)
  --json                machine-readable output
)";

int usageError(const std::string& msg) {
    std::fprintf(stderr, "wb transcribe: %s\n\n%s", msg.c_str(), kTranscribeUsage);
    return 2;
}

}  // namespace

int runTranscribeCommand(int argc, char** argv) {
    std::string file, vadModel, model, language;
    int threads = 0, maxTokens = 224, beamSize = 5;
    float temperature = 0;
    unsigned long long seed = 0;
    bool vadOnly = false, asJson = false, noTimestamps = false, noFallback = false;
    VadSettings vs;
    for (int i = 2; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&](std::string& dst) {
            if (i + 1 >= argc) return false;
            dst = argv[++i];
            return true;
        };
        if (k == "--help" || k == "-h") {
            std::fputs(kTranscribeUsage, stdout);
            return 0;
        } else if (k == "--vad-only") {
            vadOnly = true;
        } else if (k == "--no-timestamps") {
            noTimestamps = true;
        } else if (k == "--json") {
            asJson = true;
        } else if (k == "--vad-model") {
            if (!value(vadModel)) return usageError("--vad-model needs a path");
        } else if (k == "-m" || k == "--model") {
            if (!value(model)) return usageError(k + " needs a path");
        } else if (k == "-l" || k == "--language") {
            if (!value(language)) return usageError(k + " needs a language code");
        } else if (k == "-n" || k == "--max-tokens") {
            std::string v;
            if (!value(v)) return usageError(k + " needs a number");
            maxTokens = std::atoi(v.c_str());
            if (maxTokens < 1) return usageError(k + " needs a positive number");
        } else if (k == "-bs" || k == "--beam-size") {
            std::string v;
            if (!value(v)) return usageError(k + " needs a number");
            char* end = nullptr;
            beamSize = int(std::strtol(v.c_str(), &end, 10));
            if (end == v.c_str() || *end || beamSize < 1 || beamSize > 16) return usageError(k + " takes 1 to 16");
        } else if (k == "--temperature") {
            std::string v;
            if (!value(v)) return usageError(k + " needs a value");
            char* end = nullptr;
            temperature = std::strtof(v.c_str(), &end);
            if (end == v.c_str() || *end || !(temperature >= 0.0f && temperature <= 2.0f))
                return usageError(k + " takes 0 to 2");
        } else if (k == "-nf" || k == "--no-fallback") {
            noFallback = true;
        } else if (k == "--seed") {
            std::string v;
            if (!value(v)) return usageError(k + " needs a number");
            char* end = nullptr;
            seed = std::strtoull(v.c_str(), &end, 10);
            if (end == v.c_str() || *end) return usageError(k + " needs a number");
        } else if (k == "-t" || k == "--threads") {
            std::string v;
            if (!value(v)) return usageError(k + " needs a number");
            threads = std::atoi(v.c_str());
        } else if (k == "--vad-threshold") {
            std::string v;
            if (!value(v)) return usageError("--vad-threshold needs a value");
            char* end = nullptr;
            vs.threshold = std::strtof(v.c_str(), &end);
            if (end == v.c_str() || *end || !(vs.threshold > 0.0f && vs.threshold < 1.0f))
                return usageError("--vad-threshold takes a probability between 0 and 1");
        } else if (!k.empty() && k[0] == '-') {
            return usageError("unknown option " + k);
        } else if (file.empty()) {
            file = k;
        } else {
            return usageError("one audio file at a time");
        }
    }
    if (file.empty()) return usageError("no audio file given");
    if (vadOnly && vadModel.empty()) return usageError("--vad-only needs --vad-model PATH");
    if (!vadOnly && model.empty()) return usageError("no Whisper model given (-m PATH), and not --vad-only");
    auto audio = loadSpeechAudio(file);
    if (!audio) return std::fprintf(stderr, "wb: error: %s\n", audio.error().message.c_str()), 1;
    std::shared_ptr<const SpeechDetector> detector;
    if (!vadModel.empty()) {
        auto vad = SpeechDetector::load(vadModel);
        if (!vad) return std::fprintf(stderr, "wb: error: %s\n", vad.error().message.c_str()), 1;
        detector = *vad;
    }
    if (!vadOnly) {
        auto rec = SpeechRecognizer::load(model, threads);
        if (!rec) return std::fprintf(stderr, "wb: error: %s\n", rec.error().message.c_str()), 1;
        TranscribeOptions to;
        to.language = language;
        to.maxTokensPerWindow = maxTokens;
        to.timestamps = !noTimestamps;
        to.beamSize = beamSize;
        to.temperature = temperature;
        to.temperatureFallback = !noFallback;
        to.seed = seed;
        const auto start = std::chrono::steady_clock::now();
        auto t = (*rec)->transcribe(*audio, to, detector.get());
        const double transcribeMs =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (!t) return std::fprintf(stderr, "wb: error: %s\n", t.error().message.c_str()), 1;
        if (asJson) {
            json j;
            j["file"] = file;
            j["duration"] = t->durationSec;
            j["language"] = t->language;
            j["text"] = t->text;
            json segs = json::array();
            for (const auto& s : t->segments)
                segs.push_back({{"start", s.startSec}, {"end", s.endSec}, {"text", s.text}});
            j["segments"] = segs;
            j["beam_size"] = beamSize;
            j["fallbacks"] = t->fallbacks;
            j["silent_windows"] = t->silentWindows;
            j["transcribe_ms"] = transcribeMs;  // decoding the audio and loading the model excluded
            std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
        } else {
            for (const auto& s : t->segments)
                std::printf("[%6.2f --> %6.2f] %s\n", s.startSec, s.endSec, s.text.c_str());
        }
        return 0;
    }
    const auto spans = detector->detect(audio->samples, vs);
    if (asJson) {
        json j;
        j["file"] = file;
        j["duration"] = audio->durationSec();
        j["vad_model"] = detector->description();
        json segs = json::array();
        for (const auto& s : spans) segs.push_back({{"start", s.startSec}, {"end", s.endSec}});
        j["segments"] = segs;
        std::cout << j.dump(2) << "\n";
    } else {
        for (const auto& s : spans) std::printf("%.2f\t%.2f\n", s.startSec, s.endSec);
    }
    return 0;
}

}  // namespace wb::cli
