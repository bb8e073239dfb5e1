#include "openai_plugin.h"

#include <httplib.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "api/http_target.h"

using nlohmann::json;

namespace wbplugin {

namespace {

const char* g_metadata = nullptr;

char* dupString(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

void freeString(char* s) { std::free(s); }

const json& metadata() {
    static const json m = json::parse(g_metadata ? g_metadata : "{}", nullptr, false);
    return m;
}

struct Target {
    std::unique_ptr<wb::HttpTarget> http;
    std::string baseUrl;
    std::string root;  // scheme://host:port
    std::string apiKey;
    std::string model;
};

std::string rootOf(const std::string& url) {
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    return url.substr(0, url.find('/', scheme + 3));
}

/// Fills {root} and {base} of a probe template; the result is split again into client host and path.
httplib::Result fetch(const Target& t, const std::string& probe, std::string& path) {
    std::string url = probe;
    for (auto [key, value] : {std::pair<std::string, std::string>{"{root}", t.root}, {"{base}", t.baseUrl}})
        if (size_t p = url.find(key); p != std::string::npos) url.replace(p, key.size(), value);
    if (url.rfind("/", 0) == 0) url = t.root + url;
    const std::string root = rootOf(url);
    path = url.substr(root.size());
    if (path.empty()) path = "/";
    httplib::Client c(root);
    c.set_connection_timeout(3, 0);
    c.set_read_timeout(10, 0);
    httplib::Headers h;
    if (!t.apiKey.empty()) h.emplace("Authorization", "Bearer " + t.apiKey);
    return c.Get(path, h);
}

/// The value of a Prometheus series (all label sets combined by max or sum); nullopt when absent.
std::optional<double> promValue(const std::string& body, const std::string& name, bool sum) {
    std::optional<double> v;
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) continue;
        size_t pos = name.size();
        if (pos < line.size() && line[pos] == '{') {
            pos = line.find('}', pos);
            if (pos == std::string::npos) continue;
            ++pos;
        }
        if (pos >= line.size() || line[pos] != ' ') continue;
        char* end = nullptr;
        const double x = std::strtod(line.c_str() + pos + 1, &end);
        if (end == line.c_str() + pos + 1) continue;
        v = !v ? x : (sum ? *v + x : std::max(*v, x));
    }
    return v;
}

void readProm(const std::string& body, const json& specs, std::optional<double>& value, std::string& source) {
    for (const auto& s : specs) {
        const std::string name = s.value("name", "");
        if (auto v = promValue(body, name, s.value("combine", "max") == "sum")) {
            value = *v * s.value("scale", 1.0);
            source = name;
            return;
        }
    }
}

char* sampleMetrics(void* handle) {
    const Target& t = *static_cast<Target*>(handle);
    const json spec = metadata().value("metrics", json::object());
    const std::string format = spec.value("format", "none");
    std::optional<double> mem, kv;
    std::string memSource = spec.value("memoryNote", "n/a"), kvSource = spec.value("kvNote", "n/a");
    if (format != "none") {
        std::string path;
        httplib::Result r = fetch(t, spec.value("path", "/metrics"), path);
        if (!r || r->status != 200) {
            const std::string why = "n/a: " + path + (r ? " answered HTTP " + std::to_string(r->status)
                                                         : " cannot be reached");
            memSource = kvSource = why;
        } else if (format == "prometheus") {
            readProm(r->body, spec.value("memory", json::array()), mem, memSource);
            readProm(r->body, spec.value("kv", json::array()), kv, kvSource);
        } else if (format == "trtllm-json") {
            // trtllm-serve's /metrics: the iteration stats queued since the last call (enable_iter_perf_stats).
            json j = json::parse(r->body, nullptr, false);
            if (j.is_object()) j = json::array({j});
            if (j.is_array()) {
                for (const auto& it : j) {
                    if (!it.is_object()) continue;
                    if (it.contains("gpuMemUsage") && it["gpuMemUsage"].is_number()) {
                        mem = std::max(mem.value_or(0.0), it["gpuMemUsage"].get<double>());
                        memSource = "gpuMemUsage (iteration stats)";
                    }
                    const json kvs = it.value("kvCacheStats", json::object());
                    const double maxBlocks = kvs.value("maxNumBlocks", 0.0);
                    if (maxBlocks > 0 && kvs.contains("usedNumBlocks")) {
                        kv = std::max(kv.value_or(0.0), kvs.value("usedNumBlocks", 0.0) / maxBlocks);
                        kvSource = "kvCacheStats.usedNumBlocks / maxNumBlocks";
                    }
                }
            }
        } else if (format == "ollama-ps") {
            json j = json::parse(r->body, nullptr, false);
            if (j.is_object() && j.contains("models") && j["models"].is_array()) {
                double sum = 0;
                bool any = false;
                for (const auto& m : j["models"])
                    if (m.is_object() && m.contains("size_vram") && m["size_vram"].is_number()) {
                        sum += m["size_vram"].get<double>();
                        any = true;
                    }
                if (any) {
                    mem = sum;
                    memSource = "/api/ps size_vram of the loaded models";
                }
            }
        }
    }
    json out{{"memory_bytes", mem ? json(*mem) : json(nullptr)},
             {"memory_source", memSource},
             {"kv_usage", kv ? json(*kv) : json(nullptr)},
             {"kv_source", kvSource}};
    return dupString(out.dump());
}

void* openTarget(const char* configJson, char** error) {
    json c = json::parse(configJson ? configJson : "", nullptr, false);
    if (!c.is_object()) {
        *error = dupString("bad target config");
        return nullptr;
    }
    wb::HttpTargetOptions o;
    o.baseUrl = c.value("url", "");
    o.modelName = c.value("model", "");
    o.apiKey = c.value("api_key", "");
    o.chat = c.value("endpoint", "completions") == "chat";
    o.ignoreEos = c.value("ignore_eos", true);
    auto t = wb::HttpTarget::create(o);
    if (!t) {
        *error = dupString(t.error().message);
        return nullptr;
    }
    auto* target = new Target;
    target->model = o.modelName.empty() ? (*t)->models().front() : o.modelName;
    target->http = std::move(*t);
    target->baseUrl = o.baseUrl;
    while (!target->baseUrl.empty() && target->baseUrl.back() == '/') target->baseUrl.pop_back();
    target->root = rootOf(target->baseUrl);
    target->apiKey = o.apiKey;
    return target;
}

void closeTarget(void* handle) { delete static_cast<Target*>(handle); }

char* modelName(void* handle) { return dupString(static_cast<Target*>(handle)->model); }

// The request's one event, relayed to the host as the C ABI's struct.
std::function<void(const wb::Event&)> relayTo(WbTargetEventFn fn, void* user) {
    return [fn, user](const wb::Event& e) {
        if (e.type != wb::EventType::Finished && e.type != wb::EventType::Error) return;
        WbTargetEvent out{};
        const bool error = e.type == wb::EventType::Error || e.reason == wb::StopReason::Error;
        out.type = error ? WB_TARGET_EVENT_ERROR : WB_TARGET_EVENT_FINISHED;
        out.hitLength = e.reason == wb::StopReason::Length;
        out.ttftMs = e.timings.ttftMs;
        out.e2eMs = e.timings.e2eMs;
        out.interTokenMs = e.timings.interTokenMs.data();
        out.numInterToken = e.timings.interTokenMs.size();
        out.promptTokens = e.usage.promptTokens;
        out.completionTokens = e.usage.completionTokens;
        out.error = error ? e.text.c_str() : nullptr;
        fn(user, &out);
    };
}

void start(void* handle, const int32_t* prompt, size_t n, int64_t maxTokens, WbTargetEventFn fn, void* user) {
    wb::BenchRequest b;
    b.promptTokens.assign(prompt, prompt + n);
    b.maxTokens = maxTokens;
    static_cast<Target*>(handle)->http->start(b, relayTo(fn, user));
}

// A request refused before it is sent: one Error event naming why.
void refuse(WbTargetEventFn fn, void* user, const std::string& why) {
    wb::Event e;
    e.type = wb::EventType::Error;
    e.reason = wb::StopReason::Error;
    e.timings.ttftMs = -1;
    e.text = why;
    relayTo(fn, user)(e);
}

void startImages(void* handle, const int32_t* prompt, size_t n, const WbTargetImage* images, size_t numImages,
                 int64_t maxTokens, WbTargetEventFn fn, void* user) {
    wb::HttpTarget& http = *static_cast<Target*>(handle)->http;
    if (!http.acceptsImages()) {  // opened for /completions: images need the chat endpoint
        refuse(fn, user, "images need the chat endpoint (open the target with \"endpoint\": \"chat\")");
        return;
    }
    wb::BenchRequest b;
    b.promptTokens.assign(prompt, prompt + n);
    b.maxTokens = maxTokens;
    for (size_t i = 0; i < numImages; ++i)
        b.images.push_back(std::make_shared<const std::vector<uint8_t>>(images[i].data, images[i].data + images[i].size));
    http.start(b, relayTo(fn, user));
}

// Version 2: the host's own chat ({"messages", "max_tokens", "prompt_token_ids"}), sent as it is.
void startChat(void* handle, const char* requestJson, WbTargetEventFn fn, void* user) {
    json r = json::parse(requestJson ? requestJson : "", nullptr, false);
    if (!r.is_object() || !r.contains("messages") || !r["messages"].is_array() || !r.contains("max_tokens") ||
        !r["max_tokens"].is_number_integer()) {
        refuse(fn, user, "startChat: the request is not {\"messages\": [...], \"max_tokens\": N}");
        return;
    }
    // "prompt_token_ids" is the host's reference only: the count reported is the server's own usage.
    static_cast<Target*>(handle)->http->startChat(std::move(r["messages"]), r["max_tokens"].get<int64_t>(),
                                                  relayTo(fn, user));
}

int32_t health(void* handle, char** detail) {
    const Target& t = *static_cast<Target*>(handle);
    const std::string probe = metadata().value("health", std::string("{base}/models"));
    std::string path;
    httplib::Result r = fetch(t, probe, path);
    if (!r) {
        if (detail) *detail = dupString(path + " cannot be reached");
        return 0;
    }
    if (r->status != 200) {
        if (detail) *detail = dupString(path + " answered HTTP " + std::to_string(r->status));
        return 0;
    }
    if (detail) *detail = dupString(path + " answered 200");
    return 1;
}

}  // namespace

const WbTargetPlugin* openAiPluginTable(const char* metadataJson) {
    g_metadata = metadataJson;
    static const WbTargetPlugin table{WB_TARGET_PLUGIN_API_VERSION,
                                        uint32_t(sizeof(WbTargetPlugin)),
                                        metadataJson,
                                        &openTarget,
                                        &closeTarget,
                                        &modelName,
                                        &start,
                                        &health,
                                        &sampleMetrics,
                                        &freeString,
                                        &startImages,
                                        &startChat};
    return &table;
}

}  // namespace wbplugin
