#include "cli/cli_options.h"

#include "api/model_info.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>


namespace wb::cli {

bool parseArgs(int argc, char** argv, Args& a, std::string& err) {
    static const std::map<std::string, std::string> alias = {
        {"-m", "model"}, {"-p", "prompt"}, {"-n", "max-tokens"}, {"-t", "threads"}, {"-f", "file"}, {"-r", "reps"}, {"-d", "depth"}};
    static const std::vector<std::string> flags = {"json", "no-bos", "special", "help", "ignore-eos", "no-think",
                                                   "log-requests", "no-ignore-eos", "list-targets", "same-image"};
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (alias.count(k)) {
            k = alias.at(k);
        } else if (k.rfind("--", 0) == 0) {
            k = k.substr(2);
            if (auto eq = k.find('='); eq != std::string::npos) {
                a.opt[k.substr(0, eq)] = k.substr(eq + 1);
                continue;
            }
        } else {
            err = "unexpected argument: " + k;
            return false;
        }
        if (std::find(flags.begin(), flags.end(), k) != flags.end()) {
            a.opt[k] = std::string("1");
            continue;
        }
        if (i + 1 >= argc) {
            err = "option --" + k + " needs a value";
            return false;
        }
        if (k == "stop")
            a.stops.push_back(argv[++i]);
        else if (k == "image")
            a.images.push_back(argv[++i]);
        else
            a.opt[k] = argv[++i];
    }
    return true;
}

int fail(const std::string& msg) {
    std::fprintf(stderr, "wb: error: %s\n", msg.c_str());
    return 1;
}

wb::Result<std::unique_ptr<wb::Tokenizer>> loadTokenizerOnly(const std::string& path) {
    return wb::Tokenizer::fromModelPath(path);
}

wb::Result<std::unique_ptr<wb::DirectModel>> loadModel(const Args& a, bool anyFamily) {
    if (!a.has("model")) return wb::makeError("no model given (-m PATH)");
    wb::LoadOptions lo;
    auto p = wb::parsePrecision(a.get("precision", "native"));
    if (!p) return p.error();
    lo.precision = *p;
    lo.numThreads = std::atoi(a.get("threads", "0").c_str());
    if (a.has("mmproj")) lo.mmprojPath = a.get("mmproj");
    if (auto family = wb::modelFamily(a.get("model")); !anyFamily && family && *family == "glm")
        return wb::makeError(a.get("model") + " is a GLM-4 / GLM-4.1V checkpoint: use `wb chat`, `wb ask` (images "
                             "with --image) or `wb serve`, which run it through the engine");
    return wb::DirectModel::load(a.get("model"), lo);
}

// The sampling flags (--temp, --top-k, --top-p, --min-p, penalties, --seed) and -n, for generate, chat and ask.
bool samplingFlags(const Args& a, wb::SamplingParams& s, int64_t& maxTokens) {
    return number(a, "temp", s.temperature) && number(a, "top-k", s.topK) && number(a, "top-p", s.topP) &&
           number(a, "min-p", s.minP) && number(a, "repeat-penalty", s.repetitionPenalty) &&
           number(a, "presence-penalty", s.presencePenalty) && number(a, "frequency-penalty", s.frequencyPenalty) &&
           number(a, "repeat-last-n", s.penaltyLastN) && number(a, "seed", s.seed) && number(a, "max-tokens", maxTokens);
}

bool samplingFromArgs(const Args& a, wb::GenerateOptions& g) {
    g.sampling.temperature = 0;
    return samplingFlags(a, g.sampling, g.maxNewTokens);
}

std::string readPrompt(const Args& a, bool& ok) {
    ok = true;
    if (a.has("file")) {
        FILE* f = std::fopen(a.get("file").c_str(), "rb");
        if (!f) {
            ok = false;
            return "";
        }
        std::string s;
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
        std::fclose(f);
        return s;
    }
    return a.get("prompt");
}

// --device cpu|cuda and --tp N onto load options (tensor parallel over N devices: GPUs, or CPU ranks).
bool deviceFromArgs(const Args& a, wb::LoadOptions& lo, std::string& err) {
    auto dk = wb::parseDeviceKind(a.get("device", "cpu"));
    if (!dk) {
        err = dk.error().message;
        return false;
    }
    lo.device = *dk;
    lo.parallelDegree = std::atoi(a.get("tp", "1").c_str());
    if (lo.parallelDegree < 1) {
        err = "--tp must be at least 1";
        return false;
    }
    // A GGUF text model's vision tower (llama.cpp's mmproj file), for GLM-4.1V.
    lo.mmprojPath = a.get("mmproj", "");
    return true;
}

// --kv-cache-dtype auto|f32|f16.
bool kvCacheFromArgs(const Args& a, wb::EngineOptions& eo, std::string& err) {
    auto t = wb::parseKvCacheType(a.get("kv-cache-dtype", "auto"));
    if (!t) {
        err = "--kv-cache-dtype: " + t.error().message;
        return false;
    }
    eo.kvCacheType = *t;
    return true;
}

// The engine options shared by chat and ask: one sequence, a modest KV pool.
bool engineOptionsFromArgs(const Args& a, wb::EngineOptions& eo, std::string& err) {
    if (!a.has("model")) {
        err = "no model given (-m PATH)";
        return false;
    }
    eo.modelPath = a.get("model");
    auto p = wb::parsePrecision(a.get("precision", "native"));
    if (!p) {
        err = p.error().message;
        return false;
    }
    eo.load.precision = *p;
    eo.load.numThreads = std::atoi(a.get("threads", "0").c_str());
    if (!deviceFromArgs(a, eo.load, err) || !kvCacheFromArgs(a, eo, err)) return false;
    eo.maxNumSeqs = 1;
    eo.kvCacheBytes = int64_t(256) << 20;
    if (!number(a, "max-pixels", eo.maxImagePixels)) {
        err = "bad --max-pixels";
        return false;
    }
    return true;
}

bool readFileBytes(const std::string& path, std::vector<uint8_t>& bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

}  // namespace wb::cli
