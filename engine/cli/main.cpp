// wb: the headless front end of the engine (generate, chat, tokenize, inspect, bench).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <csignal>
#include <thread>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/chat_prompt.h"
#include "api/units.h"
#include "api/engine.h"
#include "backend/cpu/cpu_ops.h"
#include "api/load_test.h"
#include "api/bench_report.h"
#include "formats/gguf.h"
#include "models/glm/glm_config.h"
#include "models/glm/glm_summary.h"
#include "models/decoder/generator.h"
#include "models/decoder/llama_model.h"
#include "api/target_plugins.h"
#include "api/http_target.h"
#include "serve/metrics.h"
#include "serve/server.h"
#include "api/tokenizer.h"


using nlohmann::json;

namespace {

using wb::humanBytes;

constexpr const char* kVersion = "0.1.0";

const char* kUsage = R"(wb — Workbench engine, headless

usage: wb <command> [options]

commands:
  generate   -m MODEL -p PROMPT   generate text (streamed); --json prints ids, text and timings
  chat       -m MODEL              interactive chat through the engine, with the checkpoint's chat template
                                   when it has one; /image PATH attaches an image (vision models)
  ask        -m MODEL -p QUESTION  one chat turn through the engine (any model, GLM-4 / GLM-4.1V included);
                                   --image FILE (repeatable) puts PNG/JPEG images before the question for
                                   vision models; thinking goes to stderr, the answer to stdout
  tokenize   -m MODEL -p TEXT      print token ids and pieces (--json)
  inspect    -m MODEL              architecture, parameters, dtypes, context, tokenizer, memory (--json)
  bench      -m MODEL              prompt-processing and generation tokens/s (--json)
  serve      -m MODEL              OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, ...)
  devices                          the CPU and any CUDA GPUs this build can use (--json)
  agent      -m MODEL|--url URL    the phone agent over a folder of screenshots (--task, --screens, --out;
                                   `wb agent --help`)

MODEL is a .gguf file or a Hugging Face folder (config.json + *.safetensors).

common options:
  -m, --model PATH        model file or folder
  -t, --threads N         CPU threads (default: all cores)
  --precision P           native | fp32 | fp16 | bf16 | int8 (weight-only, per-channel) (default: native)
  --device D --tp N       (ask, chat, serve, bench) run on cpu or cuda, tensor parallel over N devices (default cpu, 1)
  --json                  machine-readable output
generate/chat options:
  -p, --prompt TEXT       prompt text (generate)
  -f, --file PATH         read the prompt from a file
  -n, --max-tokens N      tokens to generate (default 128)
  --temp T                temperature (default 0 = greedy)
  --top-k K  --top-p P  --min-p P
  --repeat-penalty R  --presence-penalty P  --frequency-penalty F  --repeat-last-n N
  --seed S                sampling seed
  --stop TEXT             stop string (repeatable)
  --no-bos                do not prepend BOS
  --special               parse special-token text in the prompt (e.g. "</s>") as control tokens
  --system TEXT           system prompt (chat, ask)
  --image FILE            image for a vision model (ask; repeatable, in order)
  --no-think              ask the template for no thinking (enable_thinking=false)
  --max-pixels N          vision models: resize images to at most N pixels (ask, serve, bench; default: the
                          checkpoint's preprocessor_config.json; phone screenshots: 5000000)
bench options (single sequence, like llama-bench):
  -p, --pp N              prompt tokens (default 128)
  -n, --tg N              generated tokens (default 64)
  -r, --reps N            repetitions (default 3)
  -d, --depth N           context already in the cache before each test (llama-bench's -d; default 0)
bench options (serving load, continuous batching):
  --concurrency 1,4,8     requests kept in flight, one run per value
  --input N --output M    tokens in / out per request (default 128 / 64, the article's workload)
  --requests N            requests per run (default max(4 x concurrency, 8))
  --p99-limit-ms X        report the highest concurrency whose end-to-end P99 stays under X ms
  --max-num-seqs N        engine batch limit (default 64)
  --request-rate R        Poisson arrivals at R requests/s (open loop; --concurrency caps what is in flight)
  --image FILE            a multimodal workload: each request is one chat message of the image(s) (repeatable, in
                          order) then the prompt; each request's images get new pixels (a few changed) so no image
                          cache answers, unless --same-image. Vision models; servers through the chat endpoint
  --url URL --model-name N  benchmark an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) instead of
                          loading the model; -m MODEL then only supplies the tokenizer for exact prompts
  --endpoint E            completions (default: token-id prompts) or chat; --api-key K; --no-ignore-eos
  --target ID             with --url: a comparison-target plugin (vllm, trtllm, sglang, llamacpp, ollama, openai)
                          that also reads the server's own memory and KV use while the run goes
  --list-targets          list the target plugins (launch line, health probe, metrics) and broken ones
  --plugin-dir DIR        look for plugins in DIR first (also WB_PLUGIN_PATH, colon-separated)
  --label NAME            the run's name in tables (default: workbench (PRECISION), or MODEL @ URL)
  --format F              table | json | csv | md (the article's table)
  --append-to FILE.json   add this run to a comparison file (several targets / precisions)
  --report FILE.json      print a comparison file (--format md | csv | json), runs nothing
serve options:
  --host H                address to bind (default 127.0.0.1: loopback only)
  --port P                port (default 8000; 0 picks a free one and prints it)
  --served-model-name N   the model id clients send (default: the model file's stem)
  --api-key K             require "Authorization: Bearer K" on /v1/*
  --max-body-mb N         request body limit in MB (default 64)
  --max-images N          images per request (default 10); --max-audios N likewise
  --max-queued N          requests waiting beyond the batch before 429 (default 256)
  --max-num-seqs N        engine batch limit (default 64); --kv-cache-mb N: KV pool size
  --log-requests          one line per request on stderr
)";

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
            a.opt[k] = "1";
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

int fail(const std::string& msg) {
    std::fprintf(stderr, "wb: error: %s\n", msg.c_str());
    return 1;
}

wb::Result<std::unique_ptr<wb::Tokenizer>> loadTokenizerOnly(const std::string& path) {
    if (std::filesystem::is_directory(path)) return wb::Tokenizer::fromHfFolder(path);
    auto g = wb::GgufFile::open(path);
    if (!g) return g.error();
    return wb::Tokenizer::fromGguf(**g);
}

wb::Result<std::unique_ptr<wb::LlamaModel>> loadModel(const Args& a) {
    if (!a.has("model")) return wb::makeError("no model given (-m PATH)");
    wb::LoadOptions lo;
    auto p = wb::parsePrecision(a.get("precision", "native"));
    if (!p) return p.error();
    lo.precision = *p;
    lo.numThreads = std::atoi(a.get("threads", "0").c_str());
    if (wb::isGlmFolder(a.get("model")))
        return wb::makeError(a.get("model") + " is a GLM-4 / GLM-4.1V checkpoint: use `wb chat`, `wb ask` (images "
                             "with --image) or `wb serve`, which run it through the engine");
    return wb::LlamaModel::load(a.get("model"), lo);
}

// The sampling flags (--temp, --top-k, --top-p, --min-p, penalties, --seed) and -n, for generate, chat and ask.
bool samplingFlags(const Args& a, wb::SamplingParams& s, int64_t& maxTokens) {
    return number(a, "temp", s.temperature) && number(a, "top-k", s.topK) && number(a, "top-p", s.topP) &&
           number(a, "min-p", s.minP) && number(a, "repeat-penalty", s.repetitionPenalty) &&
           number(a, "presence-penalty", s.presencePenalty) && number(a, "frequency-penalty", s.frequencyPenalty) &&
           number(a, "repeat-last-n", s.penaltyLastN) && number(a, "seed", s.seed) && number(a, "max-tokens", maxTokens);
}

bool samplingFromArgs(const Args& a, const wb::ModelConfig& cfg, wb::GenerateOptions& g) {
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

int cmdGenerate(const Args& a) {
    bool ok;
    const std::string prompt = readPrompt(a, ok);
    if (!ok) return fail("cannot read prompt file " + a.get("file"));
    auto m = loadModel(a);
    if (!m) return fail(m.error().message);
    wb::LlamaModel& model = **m;
    wb::GenerateOptions g;
    if (!samplingFromArgs(a, model.config(), g)) return 2;
    g.stopStrings = a.stops;
    g.ignoreEos = a.has("ignore-eos");
    const auto special = a.has("special") ? wb::SpecialTokens::Parse : wb::SpecialTokens::Plain;
    const bool addBos = !a.has("no-bos") && model.tokenizer().addBosByDefault();
    std::vector<int32_t> ids = model.tokenizer().encode(prompt, addBos, special);
    const bool asJson = a.has("json");
    if (!asJson) {
        std::fputs(prompt.c_str(), stdout);
        std::fflush(stdout);
    }
    auto r = wb::generate(model, ids, g, [&](const std::string& t) {
        if (!asJson) {
            std::fputs(t.c_str(), stdout);
            std::fflush(stdout);
        }
    });
    if (!r) return fail(r.error().message);
    if (asJson) {
        json j;
        j["model"] = model.path();
        j["precision"] = wb::precisionName(model.precision());
        j["prompt_tokens"] = r->promptTokens;
        j["tokens"] = r->tokens;
        j["text"] = r->text;
        j["finish_reason"] = wb::finishReasonName(r->finish);
        j["timings"] = {{"prompt_ms", r->prefillMs},
                        {"first_token_ms", r->firstTokenMs},
                        {"decode_ms", r->decodeMs},
                        {"total_ms", r->totalMs},
                        {"prompt_tokens_per_s", r->prefillMs > 0 ? r->promptTokens.size() * 1000.0 / r->prefillMs : 0},
                        {"decode_tokens_per_s",
                         r->tokens.size() > 1 && r->decodeMs > 0 ? (r->tokens.size() - 1) * 1000.0 / r->decodeMs : 0}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::fprintf(stdout, "\n");
        std::fprintf(stderr, "\n[%zu prompt tokens in %.1f ms, %zu generated at %.2f tokens/s, finish: %s]\n",
                     r->promptTokens.size(), r->prefillMs, r->tokens.size(),
                     r->tokens.size() > 1 && r->decodeMs > 0 ? (r->tokens.size() - 1) * 1000.0 / r->decodeMs : 0.0,
                     wb::finishReasonName(r->finish));
    }
    return 0;
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
    if (!deviceFromArgs(a, eo.load, err)) return false;
    eo.maxNumSeqs = 1;
    eo.kvCacheBytes = int64_t(256) << 20;
    if (!number(a, "max-pixels", eo.maxImagePixels)) {
        err = "bad --max-pixels";
        return false;
    }
    return true;
}

struct TurnResult {
    std::string text, reasoning;
    wb::Event last;
};

// Submits one request and waits for it; streams the answer to stdout and the reasoning to stderr unless quiet.
TurnResult runTurn(wb::Engine& engine, wb::Request r, bool quiet) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    TurnResult out;
    engine.submit(std::move(r), [&](const wb::Event& e) {
        std::lock_guard lock(mu);
        if (e.type == wb::EventType::TextDelta) {
            out.text += e.text;
            if (!quiet) {
                std::fputs(e.text.c_str(), stdout);
                std::fflush(stdout);
            }
        } else if (e.type == wb::EventType::ReasoningDelta) {
            out.reasoning += e.text;
            if (!quiet) std::fputs(e.text.c_str(), stderr);
        } else {
            out.last = e;
            done = true;
            cv.notify_all();
        }
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    return out;
}

bool readFileBytes(const std::string& path, std::vector<uint8_t>& bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return true;
}

// Interactive chat through the engine (any model; GLM-4.1V takes images with /image PATH before a question).
int cmdChat(const Args& a) {
    wb::EngineOptions eo;
    std::string err;
    if (!engineOptionsFromArgs(a, eo, err)) return fail(err);
    wb::Request base;
    base.maxTokens = 512;
    base.sampling.temperature = 0.7f;
    if (!samplingFlags(a, base.sampling, base.maxTokens)) return 2;
    base.stop = a.stops;
    base.enableThinking = !a.has("no-think");
    auto engine = wb::Engine::create(eo);
    if (!engine) return fail(engine.error().message);
    const wb::Tokenizer& tok = (*engine)->tokenizer();
    const bool vision = (*engine)->acceptsImages();
    std::vector<wb::ChatMessage> messages;
    if (a.has("system")) messages.push_back({"system", a.get("system"), {}});
    std::fprintf(stderr, "wb chat: %s (%s). %s.%s Empty line or Ctrl-D quits.\n", eo.modelPath.c_str(),
                 (*engine)->modelConfig().architecture.c_str(),
                 tok.chatTemplate() ? "Using the checkpoint's chat template" : "No chat template: plain transcript format",
                 vision ? " /image PATH attaches an image to your next message." : "");
    std::vector<std::vector<uint8_t>> pending;
    std::string line;
    while (true) {
        std::fputs(pending.empty() ? "\n> " : "\n[+image] > ", stderr);
        if (!std::getline(std::cin, line) || line.empty()) break;
        if (line.rfind("/image ", 0) == 0) {
            if (!vision) {
                std::fprintf(stderr, "this model takes text only\n");
                continue;
            }
            std::vector<uint8_t> bytes;
            if (!readFileBytes(line.substr(7), bytes)) {
                std::fprintf(stderr, "cannot read %s\n", line.substr(7).c_str());
                continue;
            }
            pending.push_back(std::move(bytes));
            continue;
        }
        wb::ChatMessage user{"user", line, {}};
        for (auto& b : pending) user.parts.push_back(wb::ContentPart::makeImage(std::move(b)));
        if (!user.parts.empty()) user.parts.push_back(wb::ContentPart::makeText(line));
        pending.clear();
        messages.push_back(std::move(user));
        wb::Request r = base;
        r.messages = messages;
        TurnResult t = runTurn(**engine, std::move(r), false);
        std::fputs("\n", stdout);
        if (t.last.type == wb::EventType::Error) {
            std::fprintf(stderr, "wb chat: %s\n", t.last.text.c_str());
            messages.pop_back();
            continue;
        }
        messages.push_back({"assistant", t.text, {}});
    }
    return 0;
}

// One chat turn through the engine, the path the server and the GUI take: any model, images for vision models.
int cmdAsk(const Args& a) {
    bool ok;
    const std::string question = readPrompt(a, ok);
    if (!ok) return fail("cannot read prompt file " + a.get("file"));
    if (question.empty() && a.images.empty()) return fail("nothing to ask: give -p QUESTION and/or --image FILE");
    wb::EngineOptions eo;
    std::string err;
    if (!engineOptionsFromArgs(a, eo, err)) return fail(err);
    wb::Request r;
    r.maxTokens = 512;
    r.sampling.temperature = 0;
    if (!samplingFlags(a, r.sampling, r.maxTokens)) return 2;
    r.stop = a.stops;
    r.ignoreEos = a.has("ignore-eos");
    r.enableThinking = !a.has("no-think");
    if (a.has("system")) r.messages.push_back({"system", a.get("system"), {}});
    wb::ChatMessage user{"user", question, {}};
    for (const std::string& path : a.images) {
        std::vector<uint8_t> bytes;
        if (!readFileBytes(path, bytes)) return fail("cannot read image " + path);
        user.parts.push_back(wb::ContentPart::makeImage(std::move(bytes)));
    }
    if (!user.parts.empty() && !question.empty()) user.parts.push_back(wb::ContentPart::makeText(question));
    r.messages.push_back(std::move(user));

    auto engine = wb::Engine::create(eo);
    if (!engine) return fail(engine.error().message);
    const bool asJson = a.has("json");
    TurnResult t = runTurn(**engine, std::move(r), asJson);
    const wb::Event& last = t.last;
    if (last.type == wb::EventType::Error) return fail(last.text);
    if (asJson) {
        json j;
        j["model"] = eo.modelPath;
        j["reasoning"] = t.reasoning;
        j["answer"] = t.text;
        j["tokens"] = last.tokens;
        j["finish_reason"] = wb::stopReasonName(last.reason);
        j["usage"] = {{"prompt_tokens", last.usage.promptTokens}, {"completion_tokens", last.usage.completionTokens}};
        j["timings"] = {{"ttft_ms", last.timings.ttftMs}, {"total_ms", last.timings.e2eMs}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::fprintf(stdout, "\n");
        std::fprintf(stderr, "[%lld prompt tokens, %lld generated, first token after %.1f ms, %s]\n",
                     (long long)last.usage.promptTokens, (long long)last.usage.completionTokens, last.timings.ttftMs,
                     wb::stopReasonName(last.reason));
    }
    return 0;
}

int cmdTokenize(const Args& a) {
    if (!a.has("model")) return fail("no model given (-m PATH)");
    bool ok;
    const std::string text = readPrompt(a, ok);
    if (!ok) return fail("cannot read prompt file " + a.get("file"));
    auto t = loadTokenizerOnly(a.get("model"));
    if (!t) return fail(t.error().message);
    const wb::Tokenizer& tok = **t;
    const auto special = a.has("special") ? wb::SpecialTokens::Parse : wb::SpecialTokens::Plain;
    auto ids = tok.encode(text, !a.has("no-bos") && tok.addBosByDefault(), special);
    if (a.has("json")) {
        json j;
        j["ids"] = ids;
        json pieces = json::array();
        for (int32_t id : ids) pieces.push_back(tok.piece(id));
        j["pieces"] = pieces;
        j["count"] = ids.size();
        std::cout << j.dump(2) << "\n";
    } else {
        for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, tok.piece(id).c_str());
        std::printf("%zu tokens\n", ids.size());
    }
    return 0;
}


// GLM-4 / GLM-4.1V folders: the plan from config.json (text and vision parameters, bytes per precision, KV per
// token, one GPU's share at tensor-parallel degree 2), as the model manager shows it.
int inspectGlm(const Args& a) {
    auto s = wb::summarizeGlmFolder(a.get("model"));
    if (!s) return fail(s.error().message);
    json j;
    j["path"] = a.get("model");
    j["architecture"] = s->config.architecture;
    j["parameters"] = s->numParameters();
    j["text_parameters"] = s->textParameters();
    j["vision_parameters"] = s->visionParameters();
    j["layers"] = s->config.text.numLayers;
    j["hidden_size"] = s->config.text.dim;
    j["context_length"] = s->config.text.maxContext;
    j["weight_bytes_by_precision"] = s->weightBytesByPrecision;
    j["kv_bytes_per_token"] = s->kvBytesPerToken;
    for (const auto& tp : s->tensorParallel)
        j["per_gpu"][std::to_string(tp.degree)] = {{"weight_bytes_by_precision", tp.weightBytesByPrecision},
                                                   {"kv_bytes_per_token", tp.kvBytesPerToken}};
    if (a.has("json")) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%s\n  architecture   %s\n  parameters     %lld (text %lld, vision %lld)\n", a.get("model").c_str(),
                s->config.architecture.c_str(), (long long)s->numParameters(), (long long)s->textParameters(),
                (long long)s->visionParameters());
    std::printf("  layers %lld, hidden %lld, heads %lld (KV %lld, head dim %lld), context %lld\n",
                (long long)s->config.text.numLayers, (long long)s->config.text.dim, (long long)s->config.text.numHeads,
                (long long)s->config.text.numKvHeads, (long long)s->config.text.headDim,
                (long long)s->config.text.maxContext);
    std::printf("  weights by precision (one device):\n");
    for (const auto& [k, v] : s->weightBytesByPrecision) std::printf("    %-7s %s\n", k.c_str(), wb::humanBytes(double(v)).c_str());
    std::printf("  KV cache (f32) %s per token\n", wb::humanBytes(double(s->kvBytesPerToken)).c_str());
    for (const auto& tp : s->tensorParallel) {
        if (tp.degree == 1) continue;
        std::printf("  per GPU at tensor parallel %d:", tp.degree);
        for (const auto& [k, v] : tp.weightBytesByPrecision) std::printf(" %s %s", k.c_str(), wb::humanBytes(double(v)).c_str());
        std::printf(", KV %s per token\n", wb::humanBytes(double(tp.kvBytesPerToken)).c_str());
    }
    return 0;
}

int cmdInspect(const Args& a) {
    if (!a.has("model")) return fail("no model given (-m PATH)");
    if (wb::isGlmFolder(a.get("model"))) return inspectGlm(a);
    auto s = wb::summarizeModel(a.get("model"));
    if (!s) return fail(s.error().message);
    const wb::ModelConfig& c = s->config;
    json j;
    j["path"] = s->path;
    j["format"] = s->format;
    j["architecture"] = c.architecture;
    j["name"] = c.name;
    j["parameters"] = s->numParameters;
    j["layers"] = c.numLayers;
    j["hidden_size"] = c.dim;
    j["heads"] = c.numHeads;
    j["kv_heads"] = c.numKvHeads;
    j["head_dim"] = c.headDim;
    j["ffn_size"] = c.ffnDim;
    j["vocab_size"] = c.vocabSize;
    j["context_length"] = c.maxContext;
    j["rope_theta"] = c.ropeTheta;
    j["tied_embeddings"] = c.tiedEmbeddings;
    j["qkv_bias"] = c.qkvBias;
    j["tensor_dtypes"] = s->tensorCountByDtype;
    j["tokenizer"] = s->tokenizerKind;
    j["weight_bytes"] = s->weightBytesByPrecision;
    j["kv_cache_bytes_per_token_fp32"] = s->kvBytesPerToken;
    j["kv_cache_bytes_full_context_fp32"] = s->kvBytesPerToken * c.maxContext;
    if (a.has("json")) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("%s (%s)\n", s->path.c_str(), s->format.c_str());
    std::printf("  architecture   %s%s\n", c.architecture.c_str(), c.name.empty() ? "" : (" — " + c.name).c_str());
    std::printf("  parameters     %lld (%.2f M)\n", (long long)s->numParameters, s->numParameters / 1e6);
    std::printf("  layers %lld, hidden %lld, heads %lld (KV %lld, head dim %lld), FFN %lld, vocab %lld\n",
                (long long)c.numLayers, (long long)c.dim, (long long)c.numHeads, (long long)c.numKvHeads,
                (long long)c.headDim, (long long)c.ffnDim, (long long)c.vocabSize);
    std::printf("  context        %lld tokens, rope theta %g%s\n", (long long)c.maxContext, c.ropeTheta,
                c.tiedEmbeddings ? ", tied embeddings" : "");
    std::printf("  tokenizer      %s\n", s->tokenizerKind.c_str());
    std::printf("  tensor dtypes ");
    for (const auto& [k, v] : s->tensorCountByDtype) std::printf(" %s×%lld", k.c_str(), (long long)v);
    std::printf("\n  weights by precision:\n");
    for (const auto& [k, v] : s->weightBytesByPrecision) std::printf("    %-7s %s\n", k.c_str(), humanBytes(v).c_str());
    std::printf("  KV cache (f32) %s per token, %s at full context\n", humanBytes(s->kvBytesPerToken).c_str(),
                humanBytes(double(s->kvBytesPerToken) * c.maxContext).c_str());
    return 0;
}

struct Stat {
    double mean = 0, sd = 0;
};
Stat stats(const std::vector<double>& v) {
    Stat s;
    if (v.empty()) return s;
    for (double x : v) s.mean += x;
    s.mean /= v.size();
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = v.size() > 1 ? std::sqrt(s.sd / (v.size() - 1)) : 0;
    return s;
}

std::vector<int> parseIntList(const std::string& s) {
    std::vector<int> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t comma = s.find(',', pos);
        if (comma == std::string::npos) comma = s.size();
        out.push_back(std::atoi(s.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
    }
    return out;
}

wb::TargetPluginRegistry loadTargetPlugins(const Args& a) {
    wb::TargetPluginRegistry reg;
    std::vector<std::string> dirs;
    if (a.has("plugin-dir")) dirs.push_back(a.get("plugin-dir"));
    for (auto& d : wb::TargetPluginRegistry::defaultSearchPath()) dirs.push_back(d);
    reg.scan(dirs);
    return reg;
}

int cmdBenchListTargets(const Args& a) {
    const wb::TargetPluginRegistry reg = loadTargetPlugins(a);
    if (a.has("json")) {
        json out{{"targets", json::array()}, {"problems", json::array()}};
        for (const auto& p : reg.plugins()) {
            json m = p->info().metadata;
            m["path"] = p->info().path;
            out["targets"].push_back(m);
        }
        for (const auto& pr : reg.problems()) out["problems"].push_back({{"path", pr.path}, {"reason", pr.reason}});
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    if (reg.plugins().empty()) std::printf("no target plugins found\n");
    for (const auto& p : reg.plugins()) {
        const wb::TargetPluginInfo& i = p->info();
        std::printf("%-10s %s %s (compat %s)  %s\n", i.id.c_str(), i.name.c_str(), i.version.c_str(),
                    i.compatVersion.c_str(), i.path.c_str());
        std::printf("           default URL: %s, endpoint: %s\n", i.defaultUrl.c_str(), i.endpoint.c_str());
        std::printf("           launch:  %s\n", i.launchTemplate.c_str());
        std::printf("           health:  %s\n", i.healthProbe.c_str());
        // Where the flavour reads memory and KV use: its series or fields, else why it is n/a.
        const json metrics = i.metadata.value("metrics", json::object());
        auto where = [&](const char* list, const char* from, const std::string& note) {
            std::string names;
            for (const auto& m : metrics.value(list, json::array())) names += (names.empty() ? "" : ", ") + m.value("name", "");
            if (names.empty()) names = metrics.value(from, "");
            if (names.empty()) return note;
            return metrics.value("path", std::string("/metrics")) + ": " + names;
        };
        std::printf("           memory:  %s\n", where("memory", "memoryFrom", i.memoryReport).c_str());
        std::printf("           KV use:  %s\n", where("kv", "kvFrom", i.kvReport).c_str());
    }
    for (const auto& pr : reg.problems())
        std::printf("skipped    %s: %s\n", pr.path.c_str(), pr.reason.c_str());
    return 0;
}

// The article's workload: fixed input/output lengths at several concurrencies (closed loop, or Poisson
// arrivals with --request-rate), against this engine in process or any OpenAI-compatible URL.
int cmdBenchServing(const Args& a) {
    int64_t input = 128, output = 64, requests = 0, maxSeqs = 64, warmup = 1, seed = 1, vocab = 0;
    double p99Limit = 0, rate = 0;
    if (!number(a, "input", input) || !number(a, "output", output) || !number(a, "requests", requests) ||
        !number(a, "p99-limit-ms", p99Limit) || !number(a, "max-num-seqs", maxSeqs) ||
        !number(a, "request-rate", rate) || !number(a, "warmup", warmup) || !number(a, "seed", seed) ||
        !number(a, "vocab-size", vocab))
        return 2;
    const std::string format = a.has("json") ? "json" : a.get("format", "table");
    if (format != "table" && format != "json" && format != "csv" && format != "md")
        return fail("--format is table, json, csv or md");
    const std::vector<int> levels = parseIntList(a.get("concurrency", "1"));
    for (int c : levels)
        if (c <= 0) return fail("--concurrency takes positive integers");

    json run{{"version", kVersion}, {"input_tokens", input}, {"output_tokens", output}, {"p99_limit_ms", p99Limit},
             {"request_rate", rate}, {"seed", seed}};
    // A multimodal workload: every request carries these images before its prompt (the phone agent's shape).
    std::unique_ptr<wb::ImageWorkload> images;
    if (!a.images.empty()) {
        auto w = wb::ImageWorkload::fromFiles(a.images, !a.has("same-image"));
        if (!w) return fail(w.error().message);
        images = std::move(*w);
        run["images"] = wb::imageWorkloadJson(*images);
        run["distinct_images"] = images->distinct();
        if (a.has("endpoint") && a.get("endpoint") != "chat")
            return fail("--image needs the chat endpoint (--endpoint chat, the default with images)");
    }
    std::unique_ptr<wb::Engine> engine;
    std::unique_ptr<wb::BenchTarget> target;
    std::unique_ptr<wb::Tokenizer> remoteTok;
    wb::PluginTarget* pluginTarget = nullptr;
    wb::TargetPluginRegistry plugins;
    const bool remote = a.has("url");
    if (a.has("target") && !remote) return fail("--target needs --url (the server's OpenAI base URL)");
    if (remote && a.has("target")) {
        plugins = loadTargetPlugins(a);
        auto plugin = plugins.find(a.get("target"));
        if (!plugin) {
            std::string known;
            for (const auto& p : plugins.plugins()) known += " " + p->info().id;
            return fail("no target plugin \"" + a.get("target") + "\" (found:" + (known.empty() ? " none" : known) +
                        "; see wb bench --list-targets)");
        }
        if (a.has("model")) {
            auto t = loadTokenizerOnly(a.get("model"));
            if (!t) return fail(t.error().message);
            remoteTok = std::move(*t);
            vocab = remoteTok->vocabSize();
        }
        wb::RemoteTargetConfig rc;
        rc.url = a.get("url");
        rc.model = a.get("model-name");
        rc.apiKey = a.get("api-key");
        rc.endpoint = images ? "chat" : a.get("endpoint");
        rc.ignoreEos = !a.has("no-ignore-eos");
        run["target"] = "http";
        run["plugin"] = plugin->info().id;
        run["plugin_version"] = plugin->info().version;
        run["url"] = rc.url;
        run["engine"] = a.get("label", plugin->info().name);
        run["precision"] = a.get("precision", "");
        auto t = plugin->open(rc);
        if (!t) {
            run["label"] = a.get("label", plugin->info().name + " @ " + rc.url);
            run["model"] = rc.model;
            run["error"] = t.error().message;
            run["results"] = json::array();
            if (a.has("append-to")) {
                auto w = wb::appendRun(a.get("append-to"), run);
                if (!w) return fail(w.error().message);
            }
            return fail(t.error().message);
        }
        pluginTarget = t->get();
        run["model"] = pluginTarget->modelName();
        run["device"] = "remote";
        run["label"] = a.get("label", plugin->info().name + " (" + pluginTarget->modelName() + ")");
        std::string detail;
        run["health"] = {{"ok", pluginTarget->healthy(&detail)}, {"detail", detail}};
        target = std::move(*t);
        if (vocab <= 0) vocab = 32000;
    } else if (remote) {
        wb::HttpTargetOptions ho;
        ho.baseUrl = a.get("url");
        ho.modelName = a.get("model-name");
        ho.apiKey = a.get("api-key");
        ho.chat = images || a.get("endpoint", "completions") == "chat";
        ho.ignoreEos = !a.has("no-ignore-eos");
        // With a local copy of the model's tokenizer (-m), prompts are exact token ids; without one, a chat or
        // text prompt of about the right length.
        if (a.has("model")) {
            auto t = loadTokenizerOnly(a.get("model"));
            if (!t) return fail(t.error().message);
            remoteTok = std::move(*t);
            vocab = remoteTok->vocabSize();
            if (ho.chat) {
                const wb::Tokenizer* tk = remoteTok.get();
                ho.detokenize = [tk](const std::vector<int32_t>& ids) { return tk->decode(ids); };
            }
        } else {
            ho.sendTokenIds = vocab > 0;
        }
        run["target"] = "http";
        run["url"] = ho.baseUrl;
        run["engine"] = a.get("label", "remote");
        run["precision"] = a.get("precision", "");
        auto t = wb::HttpTarget::create(ho);
        if (!t) {
            // Unreachable: recorded as such in the comparison, never as numbers.
            run["label"] = a.get("label", ho.modelName + " @ " + ho.baseUrl);
            run["model"] = ho.modelName;
            run["error"] = t.error().message;
            run["results"] = json::array();
            if (a.has("append-to")) {
                auto w = wb::appendRun(a.get("append-to"), run);
                if (!w) return fail(w.error().message);
            }
            return fail(t.error().message);
        }
        run["model"] = ho.modelName.empty() ? (*t)->models().front() : ho.modelName;
        run["device"] = "remote";
        run["label"] = a.get("label", (*t)->name());
        target = std::move(*t);
        if (vocab <= 0) vocab = 32000;
    } else {
        wb::EngineOptions eo;
        eo.modelPath = a.get("model");
        auto prec = wb::parsePrecision(a.get("precision", "native"));
        if (!prec) return fail(prec.error().message);
        eo.load.precision = *prec;
        eo.load.numThreads = std::atoi(a.get("threads", "0").c_str());
        {
            std::string derr;
            if (!deviceFromArgs(a, eo.load, derr)) return fail(derr);
        }
        eo.maxNumSeqs = int(maxSeqs);
        if (!number(a, "max-pixels", eo.maxImagePixels)) return 2;
        auto e = wb::Engine::create(eo);
        if (!e) return fail(e.error().message);
        engine = std::move(*e);
        vocab = engine->modelConfig().vocabSize;
        target = std::make_unique<wb::EngineTarget>(*engine);
        run["target"] = "engine";
        run["engine"] = "workbench";
        run["model"] = eo.modelPath;
        run["precision"] = wb::precisionName(*prec);
        run["device"] = engine->stats().device;
        run["label"] = a.get("label", "workbench (" + wb::precisionName(*prec) + ")");
    }

    const bool table = format == "table";
    if (table)
        std::printf("%s, %s, workload %lld in / %lld out%s%s\n%6s %8s %16s %10s %12s %10s %10s %10s %10s %6s\n",
                    run["label"].get<std::string>().c_str(), run.value("device", "").c_str(), (long long)input,
                    (long long)output, rate > 0 ? (", Poisson " + std::to_string(rate) + " req/s").c_str() : "",
                    images ? (" + " + std::to_string(images->numImages()) + " image(s) per request" +
                              (images->distinct() ? ", new pixels each request" : ", the same bytes each request"))
                                 .c_str()
                           : "",
                    "conc", "requests", "TTFT ms (±sd)", "TPOT ms", "out tok/s", "req/s", "P50 ms", "P90 ms",
                    "P99 ms", "errors");
    int best = 0;
    json results = json::array();
    // A plugin target's server is read while the load runs: peaks, not the idle state after it.
    std::unique_ptr<wb::ServerSampler> sampler;
    if (pluginTarget) sampler = std::make_unique<wb::ServerSampler>(*pluginTarget);
    for (int conc : levels) {
        wb::LoadTestOptions lo;
        lo.concurrency = conc;
        lo.numRequests = int(requests);
        lo.inputTokens = input;
        lo.outputTokens = output;
        lo.vocabSize = int(vocab);
        lo.seed = uint64_t(seed);
        lo.warmupRequests = int(warmup);
        lo.requestRate = rate;
        lo.images = images.get();
        auto r = wb::runLoadTest(*target, lo);
        const bool stable = r.errors == 0 && (p99Limit <= 0 || r.e2eMs.p99 <= p99Limit);
        if (stable) best = std::max(best, conc);
        results.push_back(wb::loadTestJson(r, stable));
        if (table) {
            std::printf("%6d %8d %9.1f ± %-5.1f %10.2f %12.2f %10.3f %10.1f %10.1f %10.1f %6d\n", conc, r.requests,
                        r.ttftMs.mean, r.ttftMs.stddev, r.tpotMs.mean, r.outputTokensPerSecond, r.requestsPerSecond,
                        r.e2eMs.p50, r.e2eMs.p90, r.e2eMs.p99, r.errors);
            if (r.errors) std::printf("       first error: %s\n", r.firstError.c_str());
            if (images && r.requests > r.errors)
                std::printf("       prompt tokens per request (images included): %.1f\n",
                            double(r.promptTokens) / double(r.requests - r.errors));
            std::fflush(stdout);
        }
    }
    run["max_stable_concurrency"] = best;
    run["results"] = results;
    json mem;
    if (engine) {
        const wb::StatsSnapshot st = engine->stats();
        const int64_t hwm = wb::processPeakRssBytes();
        mem = {{"weights_bytes", st.weightBytes}, {"kv_cache_bytes", st.kvCacheBytes},
               {"peak_rss_bytes", hwm > 0 ? json(hwm) : json(nullptr)},
               {"peak_bytes", hwm > 0 ? json(hwm) : json(nullptr)}, {"source", "process peak RSS (VmHWM)"}};
    } else if (sampler) {
        const wb::ServerSample peak = sampler->stop();
        mem = {{"peak_bytes", peak.memoryBytes ? json(*peak.memoryBytes) : json(nullptr)},
               {"source", peak.memorySource},
               {"kv_usage_peak", peak.kvUsage ? json(*peak.kvUsage) : json(nullptr)},
               {"kv_source", peak.kvSource}};
    } else {
        auto rm = wb::fetchRemoteMemory(a.get("url"), a.get("api-key"));
        mem = {{"peak_bytes", rm.peakBytes ? json(*rm.peakBytes) : json(nullptr)}, {"source", rm.source}};
    }
    run["memory"] = mem;
    sampler.reset();  // samples through the plugin target, so it goes first
    target.reset();  // joins an HTTP target's request threads

    if (a.has("append-to")) {
        auto w = wb::appendRun(a.get("append-to"), run);
        if (!w) return fail(w.error().message);
    }
    const json single{{"format", "wb-bench-comparison"}, {"version", 1}, {"runs", json::array({run})}};
    if (format == "json") {
        std::cout << run.dump(2) << "\n";
    } else if (format == "csv") {
        std::cout << wb::comparisonCsv(single);
    } else if (format == "md") {
        std::cout << wb::comparisonMarkdown(single);
    } else {
        std::printf("highest concurrency with no errors%s: %d\n",
                    p99Limit > 0 ? (" and P99 <= " + std::to_string(int(p99Limit)) + " ms").c_str() : "", best);
        std::printf("peak memory: %s (%s)\n",
                    mem["peak_bytes"].is_number() ? humanBytes(mem["peak_bytes"].get<double>()).c_str() : "n/a",
                    mem["source"].get<std::string>().c_str());
        if (mem.contains("kv_source"))
            std::printf("peak KV-cache use: %s (%s)\n",
                        mem["kv_usage_peak"].is_number()
                            ? (std::to_string(int(std::lround(mem["kv_usage_peak"].get<double>() * 100))) + "%").c_str()
                            : "n/a",
                        mem["kv_source"].get<std::string>().c_str());
    }
    return 0;
}

int cmdBenchReport(const Args& a) {
    auto doc = wb::loadComparison(a.get("report"));
    if (!doc) return fail(doc.error().message);
    const std::string format = a.get("format", "md");
    if (format == "md")
        std::cout << wb::comparisonMarkdown(*doc);
    else if (format == "csv")
        std::cout << wb::comparisonCsv(*doc);
    else if (format == "json")
        std::cout << doc->dump(2) << "\n";
    else
        return fail("--format is md, csv or json");
    return 0;
}

int cmdServe(const Args& a) {
    if (!a.has("model")) return fail("no model given (-m PATH)");
    wb::EngineOptions eo;
    eo.modelPath = a.get("model");
    auto prec = wb::parsePrecision(a.get("precision", "native"));
    if (!prec) return fail(prec.error().message);
    eo.load.precision = *prec;
    int64_t threads = 0, maxSeqs = 64, kvMb = 0, port = 8000, bodyMb = 64, images = 10, audios = 10, queued = 256;
    if (!number(a, "threads", threads) || !number(a, "max-num-seqs", maxSeqs) || !number(a, "kv-cache-mb", kvMb) ||
        !number(a, "port", port) || !number(a, "max-body-mb", bodyMb) || !number(a, "max-images", images) ||
        !number(a, "max-audios", audios) || !number(a, "max-queued", queued))
        return 2;
    if (port < 0 || port > 65535) return fail("--port must be 0-65535");
    if (bodyMb <= 0 || images < 0 || audios < 0 || queued < 0 || maxSeqs <= 0) return fail("limits must be positive");
    eo.load.numThreads = int(threads);
    {
        std::string derr;
        if (!deviceFromArgs(a, eo.load, derr)) return fail(derr);
    }
    eo.maxNumSeqs = int(maxSeqs);
    if (!number(a, "max-pixels", eo.maxImagePixels)) return 2;
    eo.kvCacheBytes = kvMb << 20;
    wb::ServeOptions so;
    so.host = a.get("host", "127.0.0.1");
    so.port = int(port);
    so.servedModelName = a.get("served-model-name");
    so.apiKey = a.get("api-key");
    so.maxBodyBytes = size_t(bodyMb) << 20;
    so.media.maxImages = size_t(images);
    so.media.maxAudios = size_t(audios);
    so.maxQueued = int(queued);
    so.logRequests = a.has("log-requests");

    // SIGINT/SIGTERM are taken by one thread with sigwait so the shutdown runs outside a signal handler; they
    // are blocked before any other thread exists so every thread inherits the mask.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    std::fprintf(stderr, "wb serve: loading %s\n", eo.modelPath.c_str());
    auto engine = wb::Engine::create(eo);
    if (!engine) return fail(engine.error().message);
    auto server = wb::OpenAiServer::create(**engine, so);
    if (!server) return fail(server.error().message);
    auto bound = (*server)->bind();
    if (!bound) return fail(bound.error().message);
    std::fputs((*server)->startupSummary().c_str(), stderr);
    // On stdout, one line a launcher can parse for the port (with --port 0).
    std::printf("wb serve: listening on http://%s:%d/v1\n", so.host.c_str(), *bound);
    std::fflush(stdout);
    wb::OpenAiServer* srv = server->get();
    std::atomic<bool> running{true};
    std::thread waiter([&sigs, &running, srv] {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (!running) return;
        std::fprintf(stderr, "wb serve: signal %d, stopping\n", sig);
        srv->stop();
        // httplib lets an idle keep-alive connection hold its worker until the keep-alive timeout; a server
        // told to stop should not linger that long, and nothing is left to save once new work is refused.
        for (int i = 0; i < 100 && running; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (running) std::_Exit(0);
    });
    auto r = (*server)->run();
    running = false;
    // run() returned on its own (an error): wake the waiter so it can be joined.
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    server->reset();
    if (!r) return fail(r.error().message);
    return 0;
}

int cmdBench(const Args& a) {
    if (a.has("report")) return cmdBenchReport(a);
    if (a.has("list-targets")) return cmdBenchListTargets(a);
    // Images make it a serving workload (chat messages through the engine or a server), never llama-bench's.
    if (a.has("concurrency") || a.has("url") || a.has("request-rate") || !a.images.empty()) return cmdBenchServing(a);
    auto m = loadModel(a);
    if (!m) return fail(m.error().message);
    wb::LlamaModel& model = **m;
    const wb::ModelConfig& c = model.config();
    int64_t pp = 128, tg = 64, reps = 3, depth = 0;
    if (!number(a, "pp", pp) || !number(a, "tg", tg) || !number(a, "reps", reps) || !number(a, "max-tokens", tg) ||
        !number(a, "depth", depth))
        return 2;
    if (a.has("prompt")) pp = std::atoll(a.get("prompt").c_str());
    if (depth < 0) return fail("--depth must be >= 0");
    if (depth + std::max(pp, tg) + 1 > c.maxContext)
        return fail("depth + max(pp, tg) exceeds the model's context of " + std::to_string(c.maxContext));
    using Clock = std::chrono::steady_clock;
    std::vector<float> logits(static_cast<size_t>(c.vocabSize));
    // Deterministic pseudo-random ids, as llama-bench uses random tokens.
    uint64_t st = 42;
    auto randomIds = [&](int64_t n) {
        std::vector<int32_t> ids(static_cast<size_t>(n));
        for (auto& id : ids) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            id = int32_t((st >> 33) % uint64_t(c.vocabSize));
        }
        return ids;
    };
    const std::vector<int32_t> context = randomIds(depth), prompt = randomIds(pp);
    // One cache for the whole run: `depth` tokens written once (not timed), then every test writes from position
    // `depth` on, over what the previous test left there (a causal model never reads past its own position).
    wb::KvCache cache(c, depth + std::max(pp, tg) + 1);
    if (depth > 0) {
        auto e = model.forward(context, 0, cache, logits.data());
        if (!e) return fail(e.error().message);
    }
    std::vector<double> ppRates, tgRates;
    // One warm-up run of each (page in the weights, grow scratch buffers).
    for (int64_t r = -1; r < reps; ++r) {
        auto t0 = Clock::now();
        auto e = model.forward(prompt, depth, cache, logits.data());
        if (!e) return fail(e.error().message);
        auto t1 = Clock::now();
        int32_t tok = c.bosTokenId >= 0 ? c.bosTokenId : 1;
        auto t2 = Clock::now();
        for (int64_t i = 0; i < tg; ++i) {
            auto e2 = model.forward(std::span<const int32_t>(&tok, 1), depth + i, cache, logits.data());
            if (!e2) return fail(e2.error().message);
            tok = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
        auto t3 = Clock::now();
        if (r < 0) continue;
        ppRates.push_back(pp / std::chrono::duration<double>(t1 - t0).count());
        tgRates.push_back(tg / std::chrono::duration<double>(t3 - t2).count());
    }
    const Stat sp = stats(ppRates), sg = stats(tgRates);
    json j;
    j["engine"] = "workbench";
    j["version"] = kVersion;
    j["model"] = model.path();
    j["precision"] = wb::precisionName(model.precision());
    j["weight_bytes"] = model.weightBytes();
    j["threads"] = model.threadPool().size();
    j["isa"] = wb::cpu::isaName(wb::cpu::detectedIsa());
    j["pp"] = {{"tokens", pp}, {"tokens_per_s", sp.mean}, {"stddev", sp.sd}, {"runs", ppRates}};
    j["tg"] = {{"tokens", tg}, {"tokens_per_s", sg.mean}, {"stddev", sg.sd}, {"runs", tgRates}};
    j["depth"] = depth;
    if (a.has("json")) {
        std::cout << j.dump(2) << "\n";
    } else {
        std::printf("model %s, precision %s, %d threads, ISA %s, weights %s\n", model.path().c_str(),
                    wb::precisionName(model.precision()).c_str(), model.threadPool().size(),
                    wb::cpu::isaName(wb::cpu::detectedIsa()), humanBytes(double(model.weightBytes())).c_str());
        const std::string at = depth > 0 ? " @ d" + std::to_string(depth) : "";
        std::printf("  pp%-5lld%s %10.2f ± %.2f tokens/s\n", (long long)pp, at.c_str(), sp.mean, sp.sd);
        std::printf("  tg%-5lld%s %10.2f ± %.2f tokens/s\n", (long long)tg, at.c_str(), sg.mean, sg.sd);
    }
    return 0;
}

}  // namespace

namespace wb::cli {
int runDevicesCommand(int argc, char** argv);  // devices_command.cpp
int runAgentCommand(int argc, char** argv);    // agent_command.cpp
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--version" || cmd == "version") {
        std::printf("wb %s\n", kVersion);
        return 0;
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "devices") return wb::cli::runDevicesCommand(argc, argv);
    if (cmd == "agent") return wb::cli::runAgentCommand(argc, argv);
    Args a;
    a.command = cmd;
    std::string err;
    if (!parseArgs(argc, argv, a, err)) {
        std::fprintf(stderr, "wb: %s\n", err.c_str());
        return 2;
    }
    if (a.has("help")) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "generate") return cmdGenerate(a);
    if (cmd == "chat") return cmdChat(a);
    if (cmd == "ask") return cmdAsk(a);
    if (cmd == "tokenize") return cmdTokenize(a);
    if (cmd == "inspect") return cmdInspect(a);
    if (cmd == "bench") return cmdBench(a);
    if (cmd == "serve") return cmdServe(a);
    std::fprintf(stderr, "wb: unknown command \"%s\"\n\n%s", cmd.c_str(), kUsage);
    return 2;
}
