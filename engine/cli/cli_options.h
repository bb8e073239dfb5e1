// Option parsing shared by the wb commands: the command line as a map of options, numbers, and the model, precision,
// threads, device and sampling options that several commands read the same way.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "api/engine.h"
#include "core/result.h"
#include "api/direct_model.h"
#include "api/tokenizer.h"

namespace wb::cli {

inline constexpr const char* kVersion = "0.1.0";

struct Args {
    std::string command;
    std::map<std::string, std::string> opt;
    std::vector<std::string> stops;
    std::vector<std::string> images;
    bool has(const std::string& k) const { return opt.count(k) != 0; }
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = opt.find(k);
        return it == opt.end() ? def : it->second;
    }
};

// Parses argv[2..] (argv[1] is the command): options by long name (aliases -m -p -n -t -f -r -d), --key=value,
// the value-less flags, and the repeatable --stop and --image.
bool parseArgs(int argc, char** argv, Args& a, std::string& err);

// Reads option `key` as a number into `out` when given; false (after saying why on stderr) when it is not a number.
template <typename T>
bool number(const Args& a, const std::string& key, T& out) {
    if (!a.has(key)) return true;
    try {
        size_t used = 0;
        const std::string s = a.get(key);
        if constexpr (std::is_floating_point_v<T>)
            out = T(std::stod(s, &used));
        else
            out = T(std::stoll(s, &used));
        if (used != s.size()) throw std::invalid_argument(s);
        return true;
    } catch (...) {
        std::fprintf(stderr, "wb: --%s expects a number, got \"%s\"\n", key.c_str(), a.get(key).c_str());
        return false;
    }
}

// Prints "wb: error: MSG" on stderr; returns the exit status 1.
int fail(const std::string& msg);

// The tokenizer alone, from a .gguf file or a Hugging Face folder.
wb::Result<std::unique_ptr<wb::Tokenizer>> loadTokenizerOnly(const std::string& path);

// -m, --precision and -t for the single-sequence commands (generate, bench); GLM folders are refused with a pointer
// to the engine-backed commands.
// The model of -m, --precision, --threads (and --mmproj). anyFamily: any family's model, forward() only where not
// Llama (`wb bench`); otherwise a GLM checkpoint is refused with the commands that run it.
wb::Result<std::unique_ptr<wb::DirectModel>> loadModel(const Args& a, bool anyFamily = false);

// The sampling flags (--temp, --top-k, --top-p, --min-p, penalties, --seed) and -n, for generate, chat and ask.
bool samplingFlags(const Args& a, wb::SamplingParams& s, int64_t& maxTokens);
// generate: greedy unless the flags say otherwise.
bool samplingFromArgs(const Args& a, wb::GenerateOptions& g);

// The prompt from -f FILE, else -p TEXT; ok is false when the file cannot be read.
std::string readPrompt(const Args& a, bool& ok);

// --device cpu|cuda and --tp N onto load options (tensor parallel over N devices: GPUs, or CPU ranks).
bool deviceFromArgs(const Args& a, wb::LoadOptions& lo, std::string& err);
bool kvCacheFromArgs(const Args& a, wb::EngineOptions& eo, std::string& err);

// The engine options shared by chat and ask: one sequence, a modest KV pool.
bool engineOptionsFromArgs(const Args& a, wb::EngineOptions& eo, std::string& err);

bool readFileBytes(const std::string& path, std::vector<uint8_t>& bytes);

}  // namespace wb::cli
