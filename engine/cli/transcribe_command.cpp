// `wb transcribe FILE [--vad-model SILERO] [--vad-only] [--json] [-m WHISPER]`: speech in an audio file. With
// --vad-only it prints the speech segments the Silero VAD finds (seconds); docs/VOICE.md.
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
  -m, --model PATH      Whisper model (HF folder or whisper.cpp ggml-*.bin)
  --json                machine-readable output
)";

int usageError(const std::string& msg) {
    std::fprintf(stderr, "wb transcribe: %s\n\n%s", msg.c_str(), kTranscribeUsage);
    return 2;
}

}  // namespace

int runTranscribeCommand(int argc, char** argv) {
    std::string file, vadModel, model;
    bool vadOnly = false, asJson = false;
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
        } else if (k == "--json") {
            asJson = true;
        } else if (k == "--vad-model") {
            if (!value(vadModel)) return usageError("--vad-model needs a path");
        } else if (k == "-m" || k == "--model") {
            if (!value(model)) return usageError(k + " needs a path");
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
    if (!vadOnly)
        return std::fprintf(stderr, "wb transcribe: Whisper transcription is not in this build yet (use --vad-only)\n"), 1;

    auto audio = loadSpeechAudio(file);
    if (!audio) return std::fprintf(stderr, "wb: error: %s\n", audio.error().message.c_str()), 1;
    auto vad = SpeechDetector::load(vadModel);
    if (!vad) return std::fprintf(stderr, "wb: error: %s\n", vad.error().message.c_str()), 1;
    const auto spans = (*vad)->detect(audio->samples, vs);
    if (asJson) {
        json j;
        j["file"] = file;
        j["duration"] = audio->durationSec();
        j["vad_model"] = (*vad)->description();
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
