// wb-fuzz-inputs: deterministic mutation fuzzing of every parser that takes untrusted bytes.
//
// For each input kind it takes seed inputs (built in, plus the shared fixtures when present), applies seeded
// mutations (bit flips, interesting bytes and little-endian integers, truncation, chunk duplication and
// deletion, length fields made huge, deep nesting, dictionary splices) and feeds every mutant to the engine's
// own parser in process. An iteration must succeed or return an Error; a sanitizer report, a crash, an
// exception escaping, a hang past the per-iteration limit or an absurd allocation is a finding: the tool names
// the kind and iteration, saves the input and exits non-zero. Build with -DWB_SANITIZE_ADDRESS=ON to catch
// memory errors; the same iteration number with the same --seed reproduces a mutant exactly (--iteration).
//
//   wb-fuzz-inputs [--kinds gguf,hf,tokenizer,image,template,openai,agent] [--iterations N] [--seed S]
//                  [--fixtures DIR | --fixtures-default DIR] [--timeout-s T] [--save-dir DIR] [--iteration I]
//                  [--show-errors N] [--input FILE]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent_session.h"
#include "api/agent.h"
#include "api/engine.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors.h"
#include "media/glm4v_image_processor.h"
#include "media/image.h"
#include "models/decoder/llama_model.h"
#include "models/decoder/model_config.h"
#include "serve/openai_protocol.h"
#include "template/chat_template.h"
#include "api/tokenizer.h"

#if defined(__SANITIZE_ADDRESS__)
#define WB_FUZZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WB_FUZZ_ASAN 1
#endif
#endif

#if defined(WB_FUZZ_ASAN) && __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/common_interface_defs.h>
#define WB_FUZZ_DEATH_CALLBACK 1
#endif

namespace fs = std::filesystem;
using nlohmann::json;

// An allocation this large is a finding: no parser needs 2 GiB for an input of a few megabytes.
constexpr size_t kAbsurdAllocation = size_t(2) << 30;

#ifdef WB_FUZZ_ASAN
// ASan: allocations over the limit are reported (with a stack) instead of being attempted; UBSan stops at its
// first report, so it cannot scroll by unnoticed.
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=2048:allocator_may_return_null=0"; }
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
#else
// Without ASan, the global operator new is replaced to catch the same thing. Every replaced new takes its memory
// from malloc and every replaced delete gives it back with free, so the pairs match; the forms left to the library
// (nothrow new calls the replaced operator new, aligned new and delete use aligned_alloc and free) match too.
// They are kept out of line: inlined into this file's std::allocator code, GCC sees free() on a pointer that
// came from operator new and warns (-Wmismatched-new-delete) about a mismatch that is not there.
namespace {
[[noreturn]] void reportAbsurdAllocation(size_t n);
}
[[gnu::noinline]] void* operator new(size_t n) {
    if (n > kAbsurdAllocation) reportAbsurdAllocation(n);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](size_t n) { return ::operator new(n); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace {

// ---------------------------------------------------------------------------------------------------------------
// What runs now, for the crash, hang and allocation reports.

struct Current {
    std::atomic<const char*> kind{nullptr};
    std::atomic<int64_t> iteration{-1};
    std::atomic<int64_t> startedMs{0};
    std::atomic<bool> busy{false};
    // The mutant's files (name → bytes), kept for the report. Only touched by the fuzzing thread, and read by a
    // reporter only once that thread is stopped or about to die.
    std::vector<std::pair<std::string, std::string>> files;
    std::string saveDir;
    uint64_t seed = 0;
    std::atomic<bool> reported{false};
};
Current g_cur;

int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void writeAll(int fd, const char* s, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= size_t(w);
    }
}
void say(const std::string& s) { writeAll(2, s.data(), s.size()); }

// Saves the current mutant and says how to run it again. Not async-signal-safe in the strict sense (it builds
// strings), which is acceptable for a process that is about to die anyway.
void reportFinding(const std::string& what) {
    if (g_cur.reported.exchange(true)) return;
    const char* kind = g_cur.kind.load();
    const int64_t it = g_cur.iteration.load();
    std::string msg = "\nwb-fuzz-inputs: FINDING: " + what + " in kind " + (kind ? kind : "?") + " at iteration " +
                      std::to_string(it) + " (--seed " + std::to_string(g_cur.seed) + ")\n";
    if (kind && !g_cur.saveDir.empty()) {
        std::error_code ec;
        fs::create_directories(g_cur.saveDir, ec);
        for (const auto& [name, bytes] : g_cur.files) {
            const std::string p = g_cur.saveDir + "/crash-" + kind + "-" + std::to_string(it) + "-" + name;
            std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
            msg += "  input saved: " + p + " (" + std::to_string(bytes.size()) + " bytes)\n";
        }
        msg += "  reproduce: wb-fuzz-inputs --kinds " + std::string(kind) + " --seed " + std::to_string(g_cur.seed) +
               " --iteration " + std::to_string(it) + "\n";
    }
    say(msg);
}

#ifndef WB_FUZZ_ASAN
[[noreturn]] void reportAbsurdAllocation(size_t n) {
    reportFinding("absurd allocation of " + std::to_string(n) + " bytes");
    std::_Exit(4);
}
#endif

#ifdef WB_FUZZ_DEATH_CALLBACK
void onSanitizerDeath() { reportFinding("sanitizer report (above)"); }
#endif

}  // namespace

#ifdef WB_FUZZ_ASAN
// Every sanitizer report ends with its summary line through this hook, UBSan's too (which, halting, does not run
// the death callback).
extern "C" void __sanitizer_report_error_summary(const char* summary) {
    say(std::string(summary) + "\n");
    reportFinding("sanitizer report (above)");
}
#endif

namespace {

void onSignal(int sig) {
    reportFinding(std::string("signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")");
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

void watchdog(int64_t limitMs) {
    for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (!g_cur.busy.load()) continue;
        const int64_t started = g_cur.startedMs.load();
        if (started && nowMs() - started > limitMs) {
            reportFinding("hang: one iteration ran longer than " + std::to_string(limitMs / 1000) + " s");
            std::_Exit(3);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Mutations.

class Rng {
public:
    explicit Rng(uint64_t seed) : m_g(seed) {}
    uint64_t next() { return m_g(); }
    size_t below(size_t n) { return n ? size_t(m_g() % n) : 0; }
    bool chance(int percent) { return int(m_g() % 100) < percent; }

private:
    std::mt19937_64 m_g;
};

const uint64_t kInteresting[] = {0,
                                 1,
                                 2,
                                 0x7f,
                                 0x80,
                                 0xff,
                                 0x100,
                                 0x7fff,
                                 0x8000,
                                 0xffff,
                                 0x10000,
                                 0x7fffffff,
                                 0x80000000,
                                 0xffffffff,
                                 0x100000000ull,
                                 0x7fffffffffffffffull,
                                 0x8000000000000000ull,
                                 0xffffffffffffffffull,
                                 0xfffffffffffffff0ull,
                                 uint64_t(1) << 28,
                                 uint64_t(1) << 30,
                                 uint64_t(1) << 40,
                                 (uint64_t(1) << 28) - 1};

const char* const kTokens[] = {
    "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", "\"", "'", "\\", "[", "]", "{", "}", "(", ")",
    ",", ":", "|", ".", "~", "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">", "=", " ", "\n", "\t",
    "\x00", "\xff", "\xc3", "\xe2\x96\x81", "\xf0\x9f\x98\x80", "\xed\xa0\x80", "0", "-1", "1e999", "-1e999",
    "1e-999", "NaN", "Infinity", "18446744073709551615", "18446744073709551616", "9223372036854775807",
    "-9223372036854775808", "4294967296", "2147483648", "0.5", "-0", "null", "true", "false", "\"\"", "[]", "{}",
    "\\u0000", "\\ud800", "\\uffff", "for", "endfor", "if", "endif", "else", "elif", "set", "macro", "endmacro",
    "call", "endcall", "in", "not", "is", "defined", "loop", "namespace", "range(", "raise_exception(",
    "messages", "message", "content", "role", "[::-1]", "[1:]", "|tojson", "|length", "|join(", "|replace(",
    "|trim", "|safe", "|items", "|int", "|list", "data:image/png;base64,", "data:image/jpeg;base64,", "image_url",
    "image", "text", "type", "url", "<|image|>", "<s>", "</s>", "<|im_start|>", "<unk>", "\xe2\x96\x81\xe2\x96\x81",
    "<0x0A>", "<0xFF>", "<0x100>", "<0x>", "Ġ", "Ċ", "merges", "vocab", "added_tokens", "model", "pre_tokenizer",
    "max_tokens", "n", "stream", "temperature", "top_p", "stop", "messages", "prompt", "dtype", "shape",
    "data_offsets", "__metadata__", "F32", "F16", "BF16", "I8", "hidden_size", "num_attention_heads",
    "num_key_value_heads", "vocab_size", "rope_scaling", "rope_theta", "max_position_embeddings"};

std::string le(uint64_t v, int width) {
    std::string s(size_t(width), '\0');
    for (int i = 0; i < width; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
    return s;
}

struct Seed {
    std::string name;  // the file name the bytes are written under, when they are written
    std::string bytes;
    size_t hot = 0;     // mutations prefer offsets below this (headers); 0: the whole input
    bool text = false;  // text-aware mutations too
    bool isJson = false;  // half the mutants are structural edits of the parsed JSON
};

void mutateOnce(std::string& b, Rng& r, size_t hot, bool text) {
    const size_t span = (hot && hot < b.size() && r.chance(85)) ? hot : b.size();
    auto pos = [&](size_t extra = 0) { return r.below(span + extra); };
    const int op = int(r.below(text ? 13 : 10));
    switch (op) {
        case 0:  // bit flip
            if (!b.empty()) b[pos()] ^= char(1u << r.below(8));
            break;
        case 1: {  // interesting byte
            static const uint8_t v[] = {0, 0xff, 0x7f, 0x80, 1, 0x20, 0x0a};
            if (!b.empty()) b[pos()] = char(v[r.below(sizeof v)]);
            break;
        }
        case 2:
        case 3: {  // interesting little-endian integer, 2/4/8 bytes, possibly negated or nudged
            const int width = 2 << r.below(3);
            if (b.size() < size_t(width)) break;
            uint64_t v = kInteresting[r.below(std::size(kInteresting))];
            if (r.chance(20)) v = ~v + 1;
            if (r.chance(20)) v += r.below(16) - 8;
            size_t p = std::min(pos(), b.size() - size_t(width));
            if (r.chance(50)) p &= ~size_t(width - 1);  // aligned, where the headers' fields usually are
            b.replace(p, size_t(width), le(v, width));
            break;
        }
        case 4: {  // a length field made huge: find a small u64 (plausibly a length or count) and blow it up
            if (b.size() < 8) break;
            for (int tries = 0; tries < 64; ++tries) {
                const size_t p = std::min(pos(), b.size() - 8);
                uint64_t v;
                std::memcpy(&v, b.data() + p, 8);
                if (v > 0 && v < (uint64_t(1) << 24)) {
                    static const uint64_t huge[] = {uint64_t(1) << 28, (uint64_t(1) << 28) - 1, uint64_t(1) << 32,
                                                    uint64_t(1) << 40, uint64_t(1) << 62, ~uint64_t(0),
                                                    ~uint64_t(0) - 7};
                    const uint64_t nv = r.chance(30) ? v + 1 + r.below(1024) : huge[r.below(std::size(huge))];
                    b.replace(p, 8, le(nv, 8));
                    break;
                }
            }
            break;
        }
        case 5:  // truncate
            b.resize(r.chance(50) ? pos() : r.below(b.size() + 1));
            break;
        case 6: {  // delete a chunk
            if (b.empty()) break;
            const size_t p = pos();
            b.erase(p, 1 + r.below(std::min<size_t>(b.size() - p, r.chance(80) ? 16 : 4096)));
            break;
        }
        case 7: {  // duplicate a chunk somewhere else
            if (b.empty() || b.size() > (8u << 20)) break;
            const size_t p = r.below(b.size());
            const std::string chunk = b.substr(p, 1 + r.below(std::min<size_t>(b.size() - p, 256)));
            b.insert(pos(1), chunk);
            break;
        }
        case 8: {  // overwrite a run with one byte
            if (b.empty()) break;
            const size_t p = pos();
            const size_t n = 1 + r.below(std::min<size_t>(b.size() - p, 64));
            std::memset(b.data() + p, r.chance(50) ? 0 : 0xff, n);
            break;
        }
        case 9: {  // random bytes
            if (b.empty()) break;
            const size_t p = pos();
            const size_t n = 1 + r.below(std::min<size_t>(b.size() - p, 8));
            for (size_t i = 0; i < n; ++i) b[p + i] = char(r.next());
            break;
        }
        case 10:
        case 11: {  // splice a token
            const std::string t = kTokens[r.below(std::size(kTokens))];
            const size_t p = pos(1);
            if (r.chance(50) && p < b.size()) b.replace(p, std::min(b.size() - p, 1 + r.below(8)), t);
            else b.insert(std::min(p, b.size()), t);
            break;
        }
        case 12: {  // deep nesting or a long run (stack depth, quadratic paths)
            static const char* const opens[] = {"[", "{\"a\":", "(", "{{ (", "{% if 1 %}", "\"", "a", "\\\\",
                                                " + 1", ".a", "|trim", "[0]", " if 1 else 1", " and x", "()"};
            std::string o = opens[r.below(std::size(opens))];
            const size_t n = r.chance(70) ? 64 + r.below(2000) : 20000 + r.below(100000);
            std::string run;
            run.reserve(o.size() * n);
            for (size_t i = 0; i < n; ++i) run += o;
            b.insert(std::min(pos(1), b.size()), run);
            break;
        }
        default:
            break;
    }
}

std::string mutate(const Seed& s, Rng& r) {
    std::string b = s.bytes;
    const int n = 1 + int(r.below(r.chance(70) ? 3 : 8));
    for (int i = 0; i < n; ++i) mutateOnce(b, r, s.hot, s.text);
    return b;
}

std::string base64(const std::string& in);

// Structural JSON mutation: replace values with hostile ones, drop keys, duplicate array elements.
json hostileValue(Rng& r) {
    switch (r.below(16)) {
        case 0: return nullptr;
        case 1: return true;
        case 2: return -1;
        case 3: return 0;
        case 4: return 1e308;
        case 5: return -1e308;
        case 6: return std::numeric_limits<int64_t>::min();
        case 7: return std::numeric_limits<uint64_t>::max();
        case 8: return 0.5;
        case 9: return "";
        case 10: return json::array();
        case 11: return json::object();
        case 12: return std::string(1 + r.below(300), 'x');
        case 13: return json::array({1, "a", nullptr});
        case 14: return 1u << 31;
        default: return "\xed\xa0\x80";
    }
}

void mutateJson(json& j, Rng& r, int depth = 0) {
    if (j.is_object() && !j.empty()) {
        auto it = j.begin();
        std::advance(it, long(r.below(j.size())));
        const int op = int(r.below(depth < 6 ? 5 : 3));
        if (op == 0) *it = hostileValue(r);
        else if (op == 1) j.erase(it);
        else if (op == 2) j[std::string(kTokens[r.below(std::size(kTokens))])] = hostileValue(r);
        else mutateJson(*it, r, depth + 1);
    } else if (j.is_array() && !j.empty()) {
        const size_t i = r.below(j.size());
        const int op = int(r.below(depth < 6 ? 5 : 3));
        if (op == 0) j[i] = hostileValue(r);
        else if (op == 1) j.erase(i);
        else if (op == 2 && j.size() < 64) j.push_back(j[i]);
        else mutateJson(j[i], r, depth + 1);
    } else if (j.is_string() && j.get<std::string>().starts_with("data:image/") && r.chance(70)) {
        // A data-URL image: mutate the decoded image, not its base64 (which the strict decoder would just reject).
        const std::string url = j.get<std::string>();
        const size_t comma = url.find(',');
        std::string bytes;
        if (comma != std::string::npos && wb::decodeBase64Strict(std::string_view(url).substr(comma + 1), bytes)) {
            Seed img{"", bytes, 0, false};
            j = url.substr(0, comma + 1) + base64(mutate(img, r));
        }
    } else if (j.is_string()) {
        std::string s = j.get<std::string>();
        Seed seed{"", s, 0, true};
        s = mutate(seed, r);
        j = s;  // nlohmann keeps invalid UTF-8 here and throws at dump(): the caller catches that
    } else {
        j = hostileValue(r);
    }
}

// A structural mutant of a JSON seed, as text (invalid UTF-8 that a string mutation left is replaced).
std::string mutateJsonText(const Seed& s, Rng& r) {
    json j = json::parse(s.bytes);
    const int n = 1 + int(r.below(4));
    for (int i = 0; i < n; ++i) mutateJson(j, r);
    return j.dump(r.chance(50) ? -1 : 2, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------------------------
// Kinds.

std::string readFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void writeFile(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

// An iteration's outcome: empty for success, else the error message.
using Outcome = std::optional<std::string>;

struct Kind {
    std::string name;
    std::string what;
    std::vector<Seed> seeds;
    std::string skipReason;  // set when the kind cannot run (no seed)
    std::function<Outcome(const Seed& seed, const std::string& mutant, Rng& r)> run;
};

// The work directory each iteration writes its files into.
fs::path g_work;

// Exercises a tokenizer after it loaded: every id's bytes and piece, and a few encodes/decodes.
void exerciseTokenizer(const wb::Tokenizer& tok) {
    const int32_t n = std::min<int32_t>(tok.vocabSize(), 4096);
    for (int32_t id = -1; id <= n; ++id) {
        (void)tok.tokenBytes(id, true);
        (void)tok.piece(id);
        (void)tok.isControl(id);
    }
    static const char* const texts[] = {"Once upon a time, there was a little girl.", "", " ", "\n\n\t x",
                                        "<s></s><unk><|im_start|>user\nhi<|im_end|>", "\xff\xfe invalid \xc3",
                                        "日本語 😀 café", "<0x0A>▁▁"};
    for (const char* t : texts) {
        for (auto sp : {wb::SpecialTokens::Parse, wb::SpecialTokens::Plain}) {
            auto ids = tok.encode(t, true, sp);
            (void)tok.decode(ids, true);
            (void)tok.decode(ids, false);
        }
    }
    (void)tok.decode({-5, 0, 1, tok.vocabSize(), tok.vocabSize() + 1000, std::numeric_limits<int32_t>::max()}, true);
    (void)tok.specialTokenId("</s>");
}

Outcome loadModelPath(const std::string& path) {
    wb::LoadOptions opts;
    opts.numThreads = 1;
    opts.hugePages = false;
    auto m = wb::LlamaModel::load(path, opts);
    if (!m) return m.error().message;
    return std::nullopt;
}

// (a) GGUF: the reader, the model config, the tokenizer from its metadata, the whole model load.
Outcome runGguf(const Seed&, const std::string& mutant, Rng&) {
    const fs::path p = g_work / "model.gguf";
    writeFile(p, mutant);
    auto g = wb::GgufFile::open(p.string());
    if (!g) return g.error().message;
    std::optional<std::string> firstError;
    auto cfg = wb::configFromGguf(**g);
    if (!cfg) firstError = cfg.error().message;
    else if (auto v = cfg->validate(p.string()); !v) firstError = v.error().message;
    auto tok = wb::Tokenizer::fromGguf(**g);
    if (tok) exerciseTokenizer(**tok);
    else if (!firstError) firstError = tok.error().message;
    if (auto e = loadModelPath(p.string()); e && !firstError) firstError = e;
    return firstError;
}

// The fixture folder's files; runHf writes them all, one of them mutated.
std::vector<Seed> g_hfFiles;

// (b) A Hugging Face folder: safetensors header, config.json, tokenizer files; the seed names which file of the
// folder is mutated, the others are the fixture's.
Outcome runHf(const Seed& seed, const std::string& mutant, Rng&) {
    const fs::path dir = g_work / "hf";
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    for (const Seed& f : g_hfFiles) writeFile(dir / f.name, f.name == seed.name ? mutant : f.bytes);
    std::optional<std::string> firstError;
    auto set = wb::SafetensorsSet::openFolder(dir.string());
    if (!set) firstError = set.error().message;
    auto cfg = wb::configFromHfFolder(dir.string());
    if (!cfg && !firstError) firstError = cfg.error().message;
    auto tok = wb::Tokenizer::fromHfFolder(dir.string());
    if (tok) exerciseTokenizer(**tok);
    else if (!firstError) firstError = tok.error().message;
    if (auto e = loadModelPath(dir.string()); e && !firstError) firstError = e;
    return firstError;
}

// (c) Tokenizer files: tokenizer.json (+ tokenizer_config.json) or tokenizer.model, alone in a folder.
Outcome runTokenizer(const Seed& seed, const std::string& mutant, Rng&) {
    const fs::path dir = g_work / "tok";
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    writeFile(dir / seed.name, mutant);
    auto tok = wb::Tokenizer::fromHfFolder(dir.string());
    if (!tok) return tok.error().message;
    exerciseTokenizer(**tok);
    if (tok.value()->chatTemplate()) (void)wb::ChatTemplate::parse(*tok.value()->chatTemplate());
    return std::nullopt;
}

// (d) Images: PNG/JPEG decoding and the GLM-4.1V preprocessing of whatever decodes; preprocessor_config.json.
Outcome runImage(const Seed& seed, const std::string& mutant, Rng&) {
    if (seed.name == "preprocessor_config.json") {
        const fs::path p = g_work / seed.name;
        writeFile(p, mutant);
        auto cfg = wb::loadGlm4vProcessorConfig(p.string());
        if (!cfg) return cfg.error().message;
        wb::Image img;
        img.width = 37;
        img.height = 23;
        img.rgb.assign(size_t(img.width) * img.height * 3, 128);
        auto in = wb::glm4vPreprocess(img, *cfg);
        if (!in) return in.error().message;
        return std::nullopt;
    }
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(mutant.data()), mutant.size());
    auto img = wb::decodeImage(bytes, "fuzz image");
    if (!img) return img.error().message;
    if (img->rgb.size() != size_t(img->width) * size_t(img->height) * 3)
        return std::string("INVARIANT: decoded rgb size does not match width x height x 3");
    auto in = wb::glm4vPreprocess(*img, wb::Glm4vProcessorConfig{});
    if (!in) return in.error().message;
    return std::nullopt;
}

// (e) Chat templates: parse, then render a chat with text, image parts, tools and a thinking flag.
Outcome runTemplate(const Seed&, const std::string& mutant, Rng& r) {
    wb::ChatTemplateOptions opt;
    opt.maxLoopIterations = 200'000;
    opt.maxOutputBytes = 8u << 20;
    auto t = wb::ChatTemplate::parse(mutant, opt);
    if (!t) return t.error().message;
    static const json messages = json::parse(R"([
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "image"},
                                     {"type": "text", "text": "this picture?"}]},
        {"role": "assistant", "content": "<think>hmm</think>A llama.", "reasoning_content": "hmm"},
        {"role": "user", "content": "Thanks! \u00e9\u65e5"},
        {"role": "tool", "content": "42", "tool_call_id": "c1"}
    ])");
    static const json extra = json::parse(R"({"enable_thinking": false,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})");
    auto out = t->renderChat(wb::TemplateValue::fromJson(messages), r.chance(50), wb::TemplateValue::fromJson(extra),
                             "<s>", "</s>");
    if (!out) return out.error().message;
    return std::nullopt;
}

// (f) OpenAI request bodies: JSON text as the server receives it, then the chat/completions parsers, then the
// images they accept decoded as the engine would.
Outcome runOpenai(const Seed& seed, const std::string& mutant, Rng& /*r*/) {
    json body;
    const std::string& text = mutant;
    try {
        body = json::parse(text);
    } catch (const json::exception& e) {
        return std::string("invalid JSON body: ") + e.what();  // what the server answers, before the parsers
    }
    wb::ApiRequest req;
    std::optional<wb::ApiError> err;
    if (seed.name == "completion.json") {
        err = wb::parseCompletionRequest(body, req);
    } else {
        wb::ModelCaps caps;
        caps.images = true;
        err = wb::parseChatRequest(body, wb::MediaLimits{}, caps, req);
    }
    if (err) {
        if (err->status < 400 || err->status > 599) return "INVARIANT: error status " + std::to_string(err->status);
        (void)wb::apiErrorBody(*err);
        return err->message;
    }
    for (const auto& m : req.messages)
        for (const auto& p : m.parts)
            if (p.kind == wb::ContentPart::Kind::Image && p.image) {
                auto img = wb::decodeImage(*p.image, "request image");
                if (!img) return img.error().message;
            }
    return std::nullopt;
}

// The phone agent's answers (engine/agent/action_parser.cpp): never a throw or a crash; ok() and error agree; the
// raw text is kept; an action's marks stay inside a phone-sized screen.
Outcome runAgent(const Seed&, const std::string& text, Rng&) {
    wb::AgentReply reply;
    wb::agent::splitThinking(text, reply.reasoning, reply.answer);
    const wb::AgentParse p = wb::parseAgentAnswer(wb::agent::parserInput(reply));
    const wb::AgentParse direct = wb::parseAgentAnswer(text);
    if (direct.raw != text) return "INVARIANT: the raw answer was not kept";
    for (const wb::AgentParse* q : {&p, &direct}) {
        if (q->ok() == !q->error.empty()) return "INVARIANT: ok() and error disagree";
        for (const wb::AgentMark& m : wb::agentMarks(*q, 1080, 2400)) {
            const bool inside = m.x >= 0 && m.y >= 0 && m.x < 1080 && m.y < 2400 && m.x2 >= 0 && m.y2 >= 0 &&
                                m.x2 < 1080 && m.y2 < 2400;
            if (!inside) return "INVARIANT: a mark outside the screen";
        }
    }
    return direct.ok() ? std::nullopt : Outcome(direct.error);
}

const char* const kAgentAnswers[] = {
    R"(<think>The search box is at the top.</think><answer>do(action="Tap", element=[500,120])</answer>)",
    R"(<think>Scroll.</think><answer>do(action="Swipe", start=[500, 800], end=[500, 200])</answer>)",
    R"(<answer>do(action="Type", text="say \"hi\"\n\u4f60")</answer>)",
    R"(<answer>do(action='Long Press', element=(3, 4), message='x'))",
    R"(<think>done</think><answer>finish(message="The "alarm" is set.")</answer>)",
    R"(do(action="Wait", duration="3 seconds"))",
    R"(<answer>do(action="Launch", app=r'''Settings''', extra=[True, None, -1.5e3])</answer>)",
};

// ---------------------------------------------------------------------------------------------------------------
// Seeds.

std::string tinyPng(int w, int h) {
    wb::Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 37 + i / 7);
    auto png = wb::encodePng(img);
    if (!png) return {};
    return std::string(png->begin(), png->end());
}

std::string base64(const std::string& in) {
    static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += tbl[(v >> 6) & 63];
        out += tbl[v & 63];
    }
    if (i + 1 == in.size()) {
        const uint32_t v = uint8_t(in[i]) << 16;
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += tbl[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

// A small GGUF with a Llama header, an SPM vocab and one tensor: the reader, config and tokenizer paths
// without the fixture (the model load then stops at the missing tensors).
std::string builtinGguf() {
    wb::GgufWriter w;
    w.setString("general.architecture", "llama");
    w.setString("general.name", "fuzz");
    w.setU32("llama.context_length", 128);
    w.setU32("llama.embedding_length", 8);
    w.setU32("llama.block_count", 1);
    w.setU32("llama.feed_forward_length", 16);
    w.setU32("llama.attention.head_count", 2);
    w.setU32("llama.attention.head_count_kv", 1);
    w.setF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.setF32("llama.rope.freq_base", 10000.f);
    w.setString("tokenizer.ggml.model", "llama");
    std::vector<std::string> toks = {"<unk>", "<s>", "</s>", "<0x0A>", "<0xFF>", "▁", "▁a", "a", "b", "ab",
                                     "▁ab", "<|im_start|>"};
    std::vector<double> scores, types;
    for (size_t i = 0; i < toks.size(); ++i) {
        scores.push_back(-double(i));
        types.push_back(i < 3 ? 3 : (i < 5 ? 6 : (i == 11 ? 4 : 1)));
    }
    w.setStringArray("tokenizer.ggml.tokens", toks);
    w.setNumberArray("tokenizer.ggml.scores", wb::GgufType::F32, scores);
    w.setNumberArray("tokenizer.ggml.token_type", wb::GgufType::I32, types);
    w.setU32("tokenizer.ggml.bos_token_id", 1);
    w.setU32("tokenizer.ggml.eos_token_id", 2);
    w.setString("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
    std::vector<uint8_t> data(12 * 8 * 4, 0);
    (void)w.addTensor("token_embd.weight", wb::DType::F32, {12, 8}, data);
    const fs::path p = g_work / "builtin.gguf";
    if (!w.write(p.string())) return {};
    return readFile(p);
}

const char* kTokenizerJson = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<|endoftext|>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 12, "content": "<|im_start|>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 13, "content": "<|im_end|>", "special": true, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "decoder": {"type": "ByteLevel"},
  "model": {
    "type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
    "vocab": {"<|endoftext|>": 0, "a": 1, "b": 2, "c": 3, "Ġ": 4, "ab": 5, "Ġa": 6, "abc": 7, "Ċ": 8, "é": 9,
              "Ã": 10, "©": 11},
    "merges": ["a b", "Ġ a", "ab c"]
  }
})";

const char* kTemplates[] = {
    // ChatML with thinking, tools and image parts (the shape of Qwen's and GLM's templates).
    R"({%- if tools %}{{- '<|im_start|>system\n' }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{{- '<|im_end|>\n' }}{%- endif %}
{%- set ns = namespace(last_user=0) %}
{%- for message in messages %}{%- if message.role == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}
{%- for message in messages %}
{%- if message.content is string %}{%- set content = message.content %}{%- else %}{%- set content = '' %}
{%- for part in message.content %}{%- if part.type == 'image' %}{%- set content = content + '<|begin_of_image|><|image|><|end_of_image|>' %}{%- elif part.type == 'text' %}{%- set content = content + part.text %}{%- endif %}{%- endfor %}{%- endif %}
{%- if message.role == 'assistant' and '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\n') %}{%- endif %}
{{- '<|im_start|>' + message.role + '\n' + content | trim + '<|im_end|>' + '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}{%- endif %})",
    // Llama 2 style: system folded into the first user turn, alternation enforced, macros, slicing, filters.
    R"({% macro fmt(role, text) -%}[{{ role | upper }}] {{ text | replace('\n', ' ') | truncate(80) if false else text }}{%- endmacro %}
{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}
{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) and message['role'] != 'tool' %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}
{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + (message['content'] if message['content'] is string else message['content'] | map(attribute='type') | join(',')) %}{% else %}{% set content = message['content'] %}{% endif %}
{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + (content if content is string else content | length | string) | trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + content | trim + ' ' + eos_token }}{% else %}{{ fmt(message.role, content | string) }}{% endif %}
{% endfor %}{{ messages | length }}{{ range(3) | list | tojson }}{{ "%d-%s" | format(3, "x") }}{{ messages[::-1][0].role }}{{ {'a': 1, 'b': [1, 2]} | dictsort | tojson }})",
};

const char* kChatBody = R"({"model": "m", "stream": true, "stream_options": {"include_usage": true},
  "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 7, "stop": ["\n\n", "END"],
  "presence_penalty": 0.1, "frequency_penalty": 0.2, "repetition_penalty": 1.1, "n": 1,
  "chat_template_kwargs": {"enable_thinking": false},
  "messages": [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": [
      {"type": "text", "text": "What is this?"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,@PNG@"}}]},
    {"role": "assistant", "content": "A square."},
    {"role": "user", "content": [{"type": "text", "text": "And this?"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,@PNG2@"}}]}
  ]})";

const char* kCompletionBody = R"({"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "temperature": 0,
  "stop": "\n", "logprobs": null, "echo": false, "stream": false, "ignore_eos": true})";

const char* kCompletionTokensBody = R"({"model": "m", "prompt": [1, 400, 32000, 2], "max_tokens": 8})";

const char* kPreprocessorConfig = R"({"size": {"shortest_edge": 12544, "longest_edge": 9633792},
  "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
  "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "image_processor_type": "Glm4vImageProcessor"})";

size_t ggufHeaderBytes(const std::string& bytes) {
    const fs::path p = g_work / "probe.gguf";
    writeFile(p, bytes);
    auto g = wb::GgufFile::open(p.string());
    if (!g) return 0;
    size_t lo = bytes.size();
    const uint8_t* base = (*g)->mappedFile()->data();
    for (const auto& t : (*g)->tensors()) lo = std::min(lo, size_t(t.data - base));
    return lo;
}

std::vector<Kind> makeKinds(const fs::path& fixtures) {
    std::vector<Kind> kinds;
    const bool haveFixtures = !fixtures.empty() && fs::is_directory(fixtures);
    auto fixture = [&](const std::string& rel) -> std::optional<std::string> {
        if (!haveFixtures || !fs::is_regular_file(fixtures / rel)) return std::nullopt;
        return readFile(fixtures / rel);
    };

    {
        Kind k{"gguf", "GGUF model files: reader, config, tokenizer, model load", {}, {}, runGguf};
        const std::string b = builtinGguf();
        k.seeds.push_back({"builtin.gguf", b, 0, false});
        if (auto s = fixture("models/stories260K/stories260K.gguf"))
            k.seeds.push_back({"stories260K.gguf", *s, ggufHeaderBytes(*s), false});
        kinds.push_back(std::move(k));
    }
    {
        Kind k{"hf", "HF folders: safetensors header, config.json, tokenizer files, model load", {}, {}, runHf};
        const std::string dir = "models/stories260K/hf/";
        for (const char* f : {"config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.model"}) {
            auto s = fixture(dir + f);
            if (!s) {
                k.skipReason = "fixture " + dir + f + " not found under " +
                               (fixtures.empty() ? std::string("(no fixtures folder)") : fixtures.string());
                break;
            }
            size_t hot = 0;
            if (std::string(f) == "model.safetensors" && s->size() >= 8) {
                uint64_t n;
                std::memcpy(&n, s->data(), 8);
                hot = size_t(std::min<uint64_t>(n + 8, s->size()));
            }
            const bool isJson = std::string(f).ends_with(".json");
            g_hfFiles.push_back({f, *s, hot, isJson, isJson});
        }
        if (k.skipReason.empty())
            for (const Seed& s : g_hfFiles)
                if (s.name != "tokenizer.model") k.seeds.push_back(s);
        kinds.push_back(std::move(k));
    }
    {
        Kind k{"tokenizer", "tokenizer.json / tokenizer.model loaders, then encode/decode", {}, {}, runTokenizer};
        k.seeds.push_back({"tokenizer.json", kTokenizerJson, 0, true, true});
        if (auto s = fixture("models/stories260K/tok512.model")) k.seeds.push_back({"tokenizer.model", *s, 0, false});
        kinds.push_back(std::move(k));
    }
    {
        Kind k{"image", "PNG/JPEG decoding, GLM-4.1V preprocessing, preprocessor_config.json", {}, {}, runImage};
        k.seeds.push_back({"small.png", tinyPng(5, 3), 0, false});
        k.seeds.push_back({"wide.png", tinyPng(64, 9), 0, false});
        k.seeds.push_back({"preprocessor_config.json", kPreprocessorConfig, 0, true, true});
        if (auto s = fixture("images/llama_cute.jpg")) k.seeds.push_back({"llama_cute.jpg", *s, 2048, false});
        kinds.push_back(std::move(k));
    }
    {
        Kind k{"template", "chat-template parser and renderer", {}, {}, runTemplate};
        for (size_t i = 0; i < std::size(kTemplates); ++i)
            k.seeds.push_back({"template" + std::to_string(i) + ".jinja", kTemplates[i], 0, true});
        kinds.push_back(std::move(k));
    }
    {
        Kind k{"agent", "the phone agent's answers: thinking split, action parser, marks", {}, {}, runAgent};
        for (size_t i = 0; i < std::size(kAgentAnswers); ++i)
            k.seeds.push_back({"answer" + std::to_string(i) + ".txt", kAgentAnswers[i], 0, true});
        kinds.push_back(std::move(k));
    }
    {
        Kind k{"openai", "OpenAI chat/completions request bodies with data-URL images", {}, {}, runOpenai};
        std::string chat = kChatBody;
        chat.replace(chat.find("@PNG@"), 5, base64(tinyPng(4, 4)));
        chat.replace(chat.find("@PNG2@"), 6, base64(tinyPng(3, 7)));
        k.seeds.push_back({"chat.json", chat, 0, true, true});
        k.seeds.push_back({"completion.json", kCompletionBody, 0, true, true});
        k.seeds.push_back({"completion.json", kCompletionTokensBody, 0, true, true});
        kinds.push_back(std::move(k));
    }
    return kinds;
}

// Errors are grouped by their first line with the temp folder and numbers blanked.
std::string errorKey(const std::string& msg) {
    std::string line = msg.substr(0, msg.find('\n'));
    const std::string work = g_work.string();
    for (size_t p; (p = line.find(work)) != std::string::npos;) line.replace(p, work.size(), "<tmp>");
    std::string out;
    bool inNum = false;
    for (char c : line) {
        const bool digit = c >= '0' && c <= '9';
        if (digit) {
            if (!inNum) out += '#';
        } else {
            out += c;
        }
        inNum = digit;
    }
    if (out.size() > 160) out = out.substr(0, 157) + "...";
    return out;
}

// Does an error say where the problem is? File kinds must name the file (or the folder); the image decoder its
// source; a template its line. Request errors are about the body, so anything goes there.
bool namesItsSource(const std::string& kind, const std::string& msg) {
    if (kind == "gguf" || kind == "hf" || kind == "tokenizer") return msg.find(g_work.string()) != std::string::npos;
    if (kind == "image") return msg.find("fuzz image") != std::string::npos ||
                                msg.find("preprocessor_config") != std::string::npos;
    if (kind == "template") return msg.find("line") != std::string::npos;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string kindsArg = "all";
    int64_t iterations = 1000;
    uint64_t seed = 1;
    int64_t only = -1;
    int64_t timeoutS = 20;
    int showErrors = 12;
    std::string fixtures;
    std::string inputFile;
    if (const char* e = std::getenv("WB_FIXTURES_DIR")) fixtures = e;
    std::string saveDir = fs::current_path().string();
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--kinds") kindsArg = val();
        else if (a == "--iterations") iterations = std::stoll(val());
        else if (a == "--seed") seed = std::stoull(val());
        else if (a == "--iteration") only = std::stoll(val());
        else if (a == "--input") inputFile = val();
        else if (a == "--fixtures") fixtures = val();
        else if (a == "--fixtures-default") {  // used when WB_FIXTURES_DIR is not set (CTest passes the cache entry)
            const std::string v = val();
            if (fixtures.empty()) fixtures = v;
        }
        else if (a == "--timeout-s") timeoutS = std::stoll(val());
        else if (a == "--save-dir") saveDir = val();
        else if (a == "--show-errors") showErrors = std::stoi(val());
        else {
            std::printf(
                "usage: wb-fuzz-inputs [--kinds all|gguf,hf,tokenizer,image,template,openai,agent] [--iterations N]\n"
                "                      [--seed S] [--iteration I] [--fixtures DIR | --fixtures-default DIR] [--timeout-s T]\n"
                "                      [--save-dir DIR]\n"
                "                      [--show-errors N] [--input FILE]\n"
                "Mutation-fuzzes the engine's input parsers in process. Every iteration must succeed or return an\n"
                "error; a sanitizer report, crash, escaping exception, hang (> T s, default 20) or allocation over\n"
                "2 GiB is a finding: the input is saved under --save-dir (default: the current folder) and the\n"
                "exit status is non-zero. --iteration I runs only iteration I (reproduces a finding); --input FILE\n"
                "runs one kind once on FILE (named like the seed it replaces: config.json, model.safetensors...).\n"
                "Fixtures (WB_FIXTURES_DIR or --fixtures) add seeds; kinds without any seed are skipped with the\n"
                "reason.\n"
                "Build with -DWB_SANITIZE_ADDRESS=ON to catch memory errors.\n");
            return a == "--help" || a == "-h" ? 0 : 2;
        }
    }
    g_cur.seed = seed;
    g_cur.saveDir = saveDir;

    char tmpl[] = "/tmp/wb-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return 2;
    }
    g_work = tmpl;

#ifdef WB_FUZZ_DEATH_CALLBACK
    __sanitizer_set_death_callback(onSanitizerDeath);
#endif
#ifndef WB_FUZZ_ASAN
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, onSignal);
#endif
    std::signal(SIGABRT, onSignal);
    std::thread(watchdog, timeoutS * 1000).detach();

    std::vector<Kind> kinds = makeKinds(fixtures);
    std::set<std::string> wanted;
    if (kindsArg != "all") {
        std::stringstream ss(kindsArg);
        for (std::string k; std::getline(ss, k, ',');) wanted.insert(k);
        for (const auto& w : wanted) {
            bool known = false;
            for (const auto& k : kinds) known |= k.name == w;
            if (!known) {
                std::fprintf(stderr, "unknown kind \"%s\"\n", w.c_str());
                return 2;
            }
        }
    }

    std::printf("wb-fuzz-inputs: seed %llu, %lld iterations per kind, fixtures %s, %s\n", (unsigned long long)seed,
                (long long)iterations, fixtures.empty() ? "(none)" : fixtures.c_str(),
#ifdef WB_FUZZ_ASAN
                "AddressSanitizer on"
#else
                "no sanitizer (build with -DWB_SANITIZE_ADDRESS=ON for memory errors)"
#endif
    );
    int findings = 0;
    for (Kind& k : kinds) {
        if (!wanted.empty() && !wanted.count(k.name)) continue;
        if (!k.skipReason.empty() || k.seeds.empty()) {
            std::printf("\n[%s] SKIPPED: %s\n", k.name.c_str(),
                        k.skipReason.empty() ? "no seed inputs" : k.skipReason.c_str());
            continue;
        }
        g_cur.kind = k.name.c_str();
        std::printf("\n[%s] %s; seeds:", k.name.c_str(), k.what.c_str());
        for (const auto& s : k.seeds) std::printf(" %s (%zu bytes)", s.name.c_str(), s.bytes.size());
        std::printf("\n");
        std::fflush(stdout);
        int64_t ok = 0, errors = 0, unnamed = 0;
        std::map<std::string, int64_t> byKey;
        std::map<std::string, std::string> unnamedExamples;
        const int64_t t0 = nowMs();
        const uint64_t kindHash = std::hash<std::string>{}(k.name);
        for (int64_t it = (only >= 0 ? only : 0); it < (only >= 0 ? only + 1 : iterations); ++it) {
            Rng r(seed * 0x9e3779b97f4a7c15ull ^ kindHash ^ (uint64_t(it) * 0xbf58476d1ce4e5b9ull));
            const Seed& s = k.seeds[r.below(k.seeds.size())];
            if (!inputFile.empty()) {  // one given input, as the seed of the same file name (else the first) sees it
                const Seed* match = &k.seeds[0];
                for (const Seed& c : k.seeds)
                    if (inputFile.ends_with(c.name)) match = &c;
                const std::string bytes = readFile(inputFile);
                g_cur.files = {{match->name, bytes}};
                g_cur.iteration = it;
                g_cur.startedMs = nowMs();
                g_cur.busy = true;
                Outcome out = k.run(*match, bytes, r);
                g_cur.busy = false;
                std::printf("[%s] %s: %s\n", k.name.c_str(), inputFile.c_str(), out ? out->c_str() : "ok");
                break;
            }
            std::string mutant = r.chance(3) ? s.bytes : (s.isJson && r.chance(50)) ? mutateJsonText(s, r) : mutate(s, r);
            g_cur.files = {{s.name, mutant}};
            g_cur.iteration = it;
            g_cur.startedMs = nowMs();
            g_cur.busy = true;
            Outcome out;
            try {
                out = k.run(s, mutant, r);
            } catch (const std::exception& e) {
                reportFinding(std::string("exception escaped: ") + e.what());
                return 1;
            } catch (...) {
                reportFinding("unknown exception escaped");
                return 1;
            }
            g_cur.busy = false;
            if (out && out->starts_with("INVARIANT")) {
                reportFinding(*out);
                return 1;
            }
            if (!out) {
                ++ok;
                continue;
            }
            ++errors;
            const std::string key = errorKey(*out);
            ++byKey[key];
            if (!namesItsSource(k.name, *out)) {
                ++unnamed;
                unnamedExamples.emplace(key, *out);
            }
        }
        const double secs = double(nowMs() - t0) / 1000.0;
        std::printf("[%s] %lld iterations in %.1f s: %lld ok, %lld errors, %zu distinct error lines\n",
                    k.name.c_str(), (long long)(ok + errors), secs, (long long)ok, (long long)errors, byKey.size());
        std::vector<std::pair<int64_t, std::string>> top;
        for (const auto& [key, n] : byKey) top.push_back({n, key});
        std::sort(top.rbegin(), top.rend());
        for (int i = 0; i < int(top.size()) && i < showErrors; ++i)
            std::printf("  %6lld  %s\n", (long long)top[size_t(i)].first, top[size_t(i)].second.c_str());
        if (int(top.size()) > showErrors) std::printf("  ... %zu more\n", top.size() - size_t(showErrors));
        if (unnamed) {
            std::printf("  %lld errors do not name their source:\n", (long long)unnamed);
            int shown = 0;
            for (const auto& [key, msg] : unnamedExamples) {
                if (shown++ >= showErrors) break;
                std::printf("    %s\n", msg.substr(0, 200).c_str());
            }
        }
        std::fflush(stdout);
    }
    g_cur.kind = nullptr;
    std::error_code ec;
    fs::remove_all(g_work, ec);
    std::printf("\nwb-fuzz-inputs: no crash, hang or escaping exception\n");
    return findings ? 1 : 0;
}
