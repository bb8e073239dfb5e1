#include "api/target_plugins.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

using nlohmann::json;

namespace wb {

namespace {

std::string takeString(const WbTargetPluginV1* t, char* s) {
    if (!s) return {};
    std::string out(s);
    if (t->freeString) t->freeString(s);
    return out;
}

std::string exeDir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : p.parent_path().string();
}

}  // namespace

bool parseVersion(const std::string& s, std::vector<int>& out) {
    out.clear();
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, '.')) {
        if (part.empty() || part.size() > 6 || !std::all_of(part.begin(), part.end(), ::isdigit)) return false;
        out.push_back(std::atoi(part.c_str()));
    }
    return !out.empty() && out.size() <= 4;
}

int compareVersions(const std::vector<int>& a, const std::vector<int>& b) {
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        const int x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
        if (x != y) return x < y ? -1 : 1;
    }
    return 0;
}

// ---- PluginTarget

PluginTarget::PluginTarget(std::shared_ptr<const TargetPlugin> plugin, void* handle, std::string url)
    : m_plugin(std::move(plugin)), m_handle(handle), m_url(std::move(url)) {
    m_model = takeString(m_plugin->m_table, m_plugin->m_table->modelName(m_handle));
}

PluginTarget::~PluginTarget() { m_plugin->m_table->close(m_handle); }

std::string PluginTarget::name() const { return m_model + " @ " + m_url + " (" + m_plugin->info().name + ")"; }

namespace {
struct Pending {
    std::function<void(const Event&)> onEvent;
};
void relayEvent(void* user, const WbTargetEvent* e) {
    std::unique_ptr<Pending> p(static_cast<Pending*>(user));
    Event ev;
    const bool error = e->type == WB_TARGET_EVENT_ERROR;
    ev.type = error ? EventType::Error : EventType::Finished;
    ev.reason = error ? StopReason::Error : (e->hitLength ? StopReason::Length : StopReason::Stop);
    if (error && e->error) ev.text = e->error;
    ev.timings.ttftMs = e->ttftMs;
    ev.timings.e2eMs = e->e2eMs;
    if (e->interTokenMs) ev.timings.interTokenMs.assign(e->interTokenMs, e->interTokenMs + e->numInterToken);
    ev.usage.promptTokens = e->promptTokens;
    ev.usage.completionTokens = e->completionTokens;
    p->onEvent(ev);
}
}  // namespace

bool PluginTarget::acceptsImages() const {
    const WbTargetPluginV1* t = m_plugin->m_table;
    return t->structSize >= offsetof(WbTargetPluginV1, startImages) + sizeof(t->startImages) && t->startImages;
}

void PluginTarget::start(const BenchRequest& b, std::function<void(const Event&)> onEvent) {
    auto* p = new Pending{std::move(onEvent)};  // owned by relayEvent once the plugin calls it
    const WbTargetPluginV1* t = m_plugin->m_table;
    if (b.images.empty()) {
        t->start(m_handle, b.promptTokens.data(), b.promptTokens.size(), b.maxTokens, &relayEvent, p);
        return;
    }
    if (!acceptsImages()) {  // runLoadTest checks first; a direct caller gets the error as the request's event
        WbTargetEvent e{};
        e.type = WB_TARGET_EVENT_ERROR;
        e.ttftMs = -1;
        const std::string why = m_plugin->info().id + ": this plugin cannot send images";
        e.error = why.c_str();
        relayEvent(p, &e);
        return;
    }
    std::vector<WbTargetImage> images;
    for (const ImageBytes& img : b.images) images.push_back({img->data(), img->size()});
    t->startImages(m_handle, b.promptTokens.data(), b.promptTokens.size(), images.data(), images.size(), b.maxTokens,
                   &relayEvent, p);
}

bool PluginTarget::healthy(std::string* detail) {
    char* d = nullptr;
    const bool ok = m_plugin->m_table->health(m_handle, &d) == 1;
    std::string s = takeString(m_plugin->m_table, d);
    if (detail) *detail = s;
    return ok;
}

ServerSample PluginTarget::sample() {
    ServerSample s;
    json j = json::parse(takeString(m_plugin->m_table, m_plugin->m_table->sampleMetrics(m_handle)), nullptr, false);
    if (!j.is_object()) {
        s.memorySource = s.kvSource = "the plugin returned no metrics";
        return s;
    }
    if (j.contains("memory_bytes") && j["memory_bytes"].is_number()) s.memoryBytes = j["memory_bytes"].get<double>();
    if (j.contains("kv_usage") && j["kv_usage"].is_number()) s.kvUsage = j["kv_usage"].get<double>();
    s.memorySource = j.value("memory_source", "");
    s.kvSource = j.value("kv_source", "");
    return s;
}

// ---- TargetPlugin

Result<std::unique_ptr<PluginTarget>> TargetPlugin::open(const RemoteTargetConfig& c) const {
    json cfg{{"url", c.url},
             {"model", c.model},
             {"api_key", c.apiKey},
             {"endpoint", c.endpoint.empty() ? m_info.endpoint : c.endpoint},
             {"ignore_eos", c.ignoreEos}};
    char* err = nullptr;
    void* h = m_table->open(cfg.dump().c_str(), &err);
    std::string e = takeString(m_table, err);
    if (!h) return makeError(e.empty() ? m_info.id + ": cannot open " + c.url : e);
    return std::unique_ptr<PluginTarget>(new PluginTarget(shared_from_this(), h, c.url));
}

std::string TargetPlugin::launchLine(const std::map<std::string, std::string>& values) const {
    std::string s = m_info.launchTemplate;
    for (const auto& [k, v] : values) {
        const std::string key = "{" + k + "}";
        for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + v.size()))
            s.replace(pos, key.size(), v);
    }
    return s;
}

// ---- TargetPluginRegistry

std::vector<std::string> TargetPluginRegistry::defaultSearchPath() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("WB_PLUGIN_PATH")) {
        std::stringstream in(env);
        std::string d;
        while (std::getline(in, d, ':'))
            if (!d.empty()) dirs.push_back(d);
    }
    const std::string exe = exeDir();
    if (!exe.empty()) {
        dirs.push_back(exe + "/../plugins");
        dirs.push_back(exe + "/../lib/workbench/plugins");
    }
    return dirs;
}

void TargetPluginRegistry::scan(const std::vector<std::string>& dirs) {
    std::vector<std::string> seen;
    for (const auto& d : dirs) {
        std::error_code ec;
        if (!std::filesystem::is_directory(d, ec)) continue;
        const std::string canon = std::filesystem::canonical(d, ec).string();
        if (ec || std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
        seen.push_back(canon);
        std::vector<std::string> files;
        for (const auto& e : std::filesystem::directory_iterator(canon, ec))
            if (e.is_regular_file() && e.path().extension() == ".so") files.push_back(e.path().string());
        std::sort(files.begin(), files.end());  // a stable order, so duplicates resolve the same way each run
        for (const auto& f : files) loadFile(f);
    }
}

bool TargetPluginRegistry::loadFile(const std::string& path) {
    auto problem = [&](const std::string& why) {
        m_problems.push_back({path, why});
        return false;
    };
    // RTLD_LOCAL keeps one plugin's symbols from resolving another's. An accepted library is never closed:
    // unloading code whose threads or thread_locals may still be alive is how plugin hosts crash at exit.
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) return problem(std::string("cannot load: ") + dlerror());
    auto reject = [&](const std::string& why) {
        dlclose(lib);
        return problem(why);
    };
    auto versionFn = reinterpret_cast<WbTargetPluginApiVersionFn>(dlsym(lib, WB_TARGET_PLUGIN_API_VERSION_SYMBOL));
    if (!versionFn) return reject("missing symbol " WB_TARGET_PLUGIN_API_VERSION_SYMBOL " (not a workbench plugin)");
    const uint32_t api = versionFn();
    if (api != WB_TARGET_PLUGIN_API_VERSION)
        return reject("incompatible API version " + std::to_string(api) + " (this workbench speaks " +
                      std::to_string(WB_TARGET_PLUGIN_API_VERSION) + ")");
    auto entryFn = reinterpret_cast<WbTargetPluginEntryFn>(dlsym(lib, WB_TARGET_PLUGIN_ENTRY_SYMBOL));
    if (!entryFn) return reject("missing symbol " WB_TARGET_PLUGIN_ENTRY_SYMBOL);
    const WbTargetPluginV1* t = entryFn();
    if (!t) return reject(WB_TARGET_PLUGIN_ENTRY_SYMBOL " returned no table");
    if (t->apiVersion != WB_TARGET_PLUGIN_API_VERSION || t->structSize < WB_TARGET_PLUGIN_V1_BASE_SIZE)
        return reject("its table is for API version " + std::to_string(t->apiVersion) + " (size " +
                      std::to_string(t->structSize) + ")");
    if (!t->open || !t->close || !t->modelName || !t->start || !t->health || !t->sampleMetrics || !t->freeString)
        return reject("its table lacks a function");
    if (!t->metadataJson) return reject("no metadata");
    json m = json::parse(t->metadataJson, nullptr, false);
    if (m.is_discarded() || !m.is_object()) return reject("its metadata is not valid JSON");
    auto str = [&](const char* k) { return m.contains(k) && m[k].is_string() ? m[k].get<std::string>() : ""; };
    auto plugin = std::make_shared<TargetPlugin>();
    TargetPluginInfo& i = plugin->m_info;
    i.id = str("id");
    i.name = str("name");
    i.version = str("version");
    i.compatVersion = str("compatVersion");
    for (const auto& [k, v] : {std::pair{"id", &i.id}, {"name", &i.name}, {"version", &i.version},
                               {"compatVersion", &i.compatVersion}})
        if (v->empty()) return reject(std::string("its metadata lacks \"") + k + "\"");
    if (m.value("apiVersion", 0u) != WB_TARGET_PLUGIN_API_VERSION)
        return reject("its metadata says apiVersion " + m.value("apiVersion", json(nullptr)).dump());
    std::vector<int> ver, compat;
    if (!parseVersion(i.version, ver) || !parseVersion(i.compatVersion, compat))
        return reject("version \"" + i.version + "\" / compatVersion \"" + i.compatVersion + "\" not dotted numbers");
    if (compareVersions(compat, ver) > 0)
        return reject("compatVersion " + i.compatVersion + " is newer than its version " + i.version);
    i.description = str("description");
    i.defaultUrl = str("defaultUrl");
    i.endpoint = str("endpoint").empty() ? "completions" : str("endpoint");
    i.launchTemplate = str("launch");
    i.healthProbe = str("health");
    const json metrics = m.value("metrics", json::object());
    i.memoryReport = metrics.value("memoryNote", std::string("n/a"));
    i.kvReport = metrics.value("kvNote", std::string("n/a"));
    i.path = path;
    i.metadata = m;
    plugin->m_table = t;
    plugin->m_library = lib;

    // Two plugins with one id: the newer one wins, as when a user drops an update next to the shipped copy.
    for (auto& existing : m_plugins) {
        if (existing->m_info.id != i.id) continue;
        std::vector<int> old;
        parseVersion(existing->m_info.version, old);
        if (compareVersions(ver, old) <= 0)
            return reject("id \"" + i.id + "\" " + i.version + " is already loaded from " + existing->m_info.path +
                          " (" + existing->m_info.version + ")");
        m_problems.push_back({existing->m_info.path, "id \"" + i.id + "\" replaced by the newer " + path});
        existing = plugin;
        return true;
    }
    m_plugins.push_back(plugin);
    return true;
}

std::shared_ptr<const TargetPlugin> TargetPluginRegistry::find(const std::string& id) const {
    for (const auto& p : m_plugins)
        if (p->m_info.id == id) return p;
    return nullptr;
}

// ---- ServerSampler

struct ServerSampler::State {
    std::mutex mutex;
    std::condition_variable cv;
    bool stop = false;
    ServerSample peak;
    std::thread thread;
    void merge(const ServerSample& s) {
        std::lock_guard lock(mutex);
        if (s.memoryBytes && (!peak.memoryBytes || *s.memoryBytes > *peak.memoryBytes)) peak.memoryBytes = s.memoryBytes;
        if (s.kvUsage && (!peak.kvUsage || *s.kvUsage > *peak.kvUsage)) peak.kvUsage = s.kvUsage;
        if (peak.memorySource.empty() || s.memoryBytes) peak.memorySource = s.memorySource;
        if (peak.kvSource.empty() || s.kvUsage) peak.kvSource = s.kvSource;
    }
};

ServerSampler::ServerSampler(PluginTarget& target, int intervalMs) : m_state(std::make_shared<State>()) {
    auto st = m_state;
    st->thread = std::thread([st, &target, intervalMs] {
        std::unique_lock lock(st->mutex);
        while (!st->stop) {
            lock.unlock();
            const ServerSample s = target.sample();
            st->merge(s);
            lock.lock();
            st->cv.wait_for(lock, std::chrono::milliseconds(intervalMs), [&] { return st->stop; });
        }
    });
}

ServerSampler::~ServerSampler() { stop(); }

ServerSample ServerSampler::stop() {
    {
        std::lock_guard lock(m_state->mutex);
        m_state->stop = true;
        m_state->cv.notify_all();
    }
    if (m_state->thread.joinable()) m_state->thread.join();
    std::lock_guard lock(m_state->mutex);
    return m_state->peak;
}

}  // namespace wb
