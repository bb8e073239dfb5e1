#include "api/target_plugins.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <chrono>

using nlohmann::json;

namespace wb {

namespace {

std::string takeString(const WbTargetPlugin* t, char* s) {
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

std::string base64(const std::vector<uint8_t>& in) {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    for (size_t i = 0; i < in.size(); i += 3) {
        const uint32_t n = uint32_t(in[i]) << 16 | (i + 1 < in.size() ? uint32_t(in[i + 1]) << 8 : 0u) |
                           (i + 2 < in.size() ? uint32_t(in[i + 2]) : 0u);
        out += k[n >> 18 & 63];
        out += k[n >> 12 & 63];
        out += i + 1 < in.size() ? k[n >> 6 & 63] : '=';
        out += i + 2 < in.size() ? k[n & 63] : '=';
    }
    return out;
}
}  // namespace

bool PluginTarget::chatCapable() const {
    return m_plugin->m_apiVersion >= 2 && m_plugin->m_table->startChat && m_detokenize;
}

bool PluginTarget::acceptsImages() const {
    const WbTargetPlugin* t = m_plugin->m_table;
    if (m_chat && chatCapable()) return true;
    return t->structSize >= offsetof(WbTargetPlugin, startImages) + sizeof(t->startImages) && t->startImages;
}

static std::string chatRequestJson(const BenchRequest& b, const std::string& text) {
    // The engine target's chat (EngineTarget::start): one user message, the images, then the prompt as text.
    json content = json::array();
    for (const ImageBytes& img : b.images) {
        const bool jpeg = img->size() >= 3 && (*img)[0] == 0xFF && (*img)[1] == 0xD8 && (*img)[2] == 0xFF;
        content.push_back({{"type", "image_url"},
                           {"image_url", {{"url", std::string("data:image/") + (jpeg ? "jpeg" : "png") +
                                                      ";base64," + base64(*img)}}}});
    }
    content.push_back({{"type", "text"}, {"text", text}});
    const json req{{"messages", json::array({{{"role", "user"}, {"content", std::move(content)}}})},
                   {"max_tokens", b.maxTokens},
                   {"prompt_token_ids", b.promptTokens}};
    // A decoded prompt of random ids may hold bytes that are not UTF-8: they go as U+FFFD.
    return req.dump(-1, ' ', false, json::error_handler_t::replace);
}

void PluginTarget::start(const BenchRequest& b, std::function<void(const Event&)> onEvent) {
    auto* p = new Pending{std::move(onEvent)};  // owned by relayEvent once the plugin calls it
    const WbTargetPlugin* t = m_plugin->m_table;
    if (m_chat && chatCapable()) {
        const std::string req = chatRequestJson(b, m_detokenize(b.promptTokens));
        t->startChat(m_handle, req.c_str(), &relayEvent, p);
        return;
    }
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
    std::unique_ptr<PluginTarget> t(new PluginTarget(shared_from_this(), h, c.url));
    t->m_detokenize = c.detokenize;
    t->m_chat = cfg["endpoint"] == "chat";
    return t;
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
    if (api < WB_TARGET_PLUGIN_API_VERSION_MIN || api > WB_TARGET_PLUGIN_API_VERSION)
        return reject("incompatible API version " + std::to_string(api) + " (this workbench loads versions " +
                      std::to_string(WB_TARGET_PLUGIN_API_VERSION_MIN) + " to " +
                      std::to_string(WB_TARGET_PLUGIN_API_VERSION) + "; rebuild the plugin against this "
                      "workbench's target_plugin_api.h)");
    auto entryFn = reinterpret_cast<WbTargetPluginEntryFn>(dlsym(lib, WB_TARGET_PLUGIN_ENTRY_SYMBOL));
    if (!entryFn) return reject("missing symbol " WB_TARGET_PLUGIN_ENTRY_SYMBOL);
    const WbTargetPlugin* t = entryFn();
    if (!t) return reject(WB_TARGET_PLUGIN_ENTRY_SYMBOL " returned no table");
    const size_t minSize = api >= 2 ? WB_TARGET_PLUGIN_V2_SIZE : WB_TARGET_PLUGIN_V1_BASE_SIZE;
    if (t->apiVersion != api || t->structSize < minSize)
        return reject("its table is for API version " + std::to_string(t->apiVersion) + " (size " +
                      std::to_string(t->structSize) + "), its library says " + std::to_string(api));
    if (!t->open || !t->close || !t->modelName || !t->start || !t->health || !t->sampleMetrics || !t->freeString)
        return reject("its table lacks a function");
    if (api >= 2 && !t->startChat) return reject("its version-2 table lacks startChat");
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
    if (!m.contains("apiVersion") || !m["apiVersion"].is_number_unsigned() || m["apiVersion"].get<uint32_t>() != api)
        return reject("its metadata says apiVersion " + m.value("apiVersion", json(nullptr)).dump() +
                      ", its library " + std::to_string(api));
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
    plugin->m_apiVersion = api;
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

// ---- LaunchedServer

extern "C" char** environ;

namespace {

// execvp's search, done before fork (the child may only make async-signal-safe calls): the command itself when it
// names a path, else the first executable regular file of that name in `path` (the launch's PATH).
std::string resolveCommand(const std::string& cmd, const std::string& path) {
    if (cmd.find('/') != std::string::npos) return cmd;
    const std::string dirs = path.empty() ? std::string("/usr/local/bin:/usr/bin:/bin") : path;
    for (size_t from = 0;;) {
        const size_t colon = dirs.find(':', from);
        std::string dir = dirs.substr(from, colon == std::string::npos ? std::string::npos : colon - from);
        std::string full = dir.empty() ? std::string(".") : std::move(dir);
        full.append("/").append(cmd);
        struct stat st {};
        if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(full.c_str(), X_OK) == 0) return full;
        if (colon == std::string::npos) return {};
        from = colon + 1;
    }
}

// What the child reports through its error pipe when a step before exec fails.
enum class LaunchStep : int { Log = 1, WorkDir, Exec, ParentGone };

}  // namespace

Result<std::unique_ptr<LaunchedServer>> LaunchedServer::start(const ServerLaunch& l) {
    if (l.argv.empty() || l.argv[0].empty()) return makeError("launch: no command");
    std::unique_ptr<LaunchedServer> s(new LaunchedServer);
    s->m_log = l.logPath;
    if (s->m_log.empty()) {
        std::error_code ec;
        const auto dir = std::filesystem::temp_directory_path(ec);
        s->m_log = (ec ? std::string("/tmp") : dir.string()) + "/wb-launch-" + std::to_string(getpid()) + "-" +
                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".log";
    }
    // The environment: ours, with the launch's KEY=VALUE entries replacing same-named ones.
    std::vector<std::string> env;
    auto keyOf = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
    for (char** e = environ; e && *e; ++e) {
        const std::string kv(*e);
        bool overridden = false;
        for (const auto& o : l.env) overridden = overridden || keyOf(o) == keyOf(kv);
        if (!overridden) env.push_back(kv);
    }
    for (const auto& o : l.env)
        if (o.find('=') != std::string::npos) env.push_back(o);
    std::string pathVar;
    for (const auto& kv : env)
        if (keyOf(kv) == "PATH") pathVar = kv.substr(5);
    const std::string program = resolveCommand(l.argv[0], pathVar);
    if (program.empty())
        return makeError("launch: cannot start " + l.argv[0] + ": no executable of that name on PATH (" + pathVar +
                         ")");
    std::vector<char*> argv, envp;
    for (const auto& a : l.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    // fork + exec rather than posix_spawn, for one call between them: PR_SET_PDEATHSIG, so that the server gets
    // SIGTERM when this process dies however it dies (a crash, SIGKILL), instead of holding its GPU memory and port
    // as an orphan. The child makes async-signal-safe calls only (this process has other threads); it reports a
    // failed step through a close-on-exec pipe, which reads end-of-file once exec has succeeded.
    int errPipe[2];
    if (pipe2(errPipe, O_CLOEXEC) != 0) return makeError(std::string("launch: pipe: ") + std::strerror(errno));
    const pid_t parent = getpid();
    const char* logPath = s->m_log.c_str();
    const char* workDir = l.workDir.empty() ? nullptr : l.workDir.c_str();
    const pid_t pid = fork();
    if (pid < 0) {
        const int e = errno;
        close(errPipe[0]);
        close(errPipe[1]);
        return makeError("launch: cannot start " + l.argv[0] + ": fork: " + std::strerror(e));
    }
    if (pid == 0) {
        auto fail = [&](LaunchStep step) {
            const int report[2] = {int(step), errno};
            [[maybe_unused]] const ssize_t n = write(errPipe[1], report, sizeof report);
            _exit(127);
        };
        // Its own process group, so stop() reaches the children a launcher script starts; default signal handling.
        setpgid(0, 0);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // SIGKILL, SIGSTOP: refused, harmless
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        // The signal follows the thread that forked (see the header); a parent already gone is not waited for.
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) fail(LaunchStep::ParentGone);
        const int in = open("/dev/null", O_RDONLY);
        if (in >= 0 && in != 0) {
            dup2(in, 0);
            close(in);
        }
        const int out = open(logPath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0) fail(LaunchStep::Log);
        dup2(out, 1);
        dup2(out, 2);
        if (out > 2) close(out);
        // Nothing else of this process travels: not the HTTP server's listening socket (which would keep the port
        // bound after the workbench exits), not a model file's descriptor. The error pipe closes at exec.
        if (errPipe[1] > 3) close_range(3, unsigned(errPipe[1]) - 1, 0);
        close_range(unsigned(errPipe[1]) + 1, ~0u, 0);
        if (workDir && chdir(workDir) != 0) fail(LaunchStep::WorkDir);
        execve(program.c_str(), argv.data(), envp.data());
        fail(LaunchStep::Exec);
    }
    close(errPipe[1]);
    setpgid(pid, pid);  // also here, so that a stop() right after start() reaches the group (EACCES after exec)
    int report[2] = {0, 0};
    ssize_t n;
    do n = read(errPipe[0], report, sizeof report);
    while (n < 0 && errno == EINTR);
    close(errPipe[0]);
    if (n == ssize_t(sizeof report)) {
        int status = 0;
        waitpid(pid, &status, 0);
        std::string what;
        switch (LaunchStep(report[0])) {
            case LaunchStep::Log: what = "cannot write its log " + s->m_log; break;
            case LaunchStep::WorkDir: what = "cannot change to its folder " + l.workDir; break;
            case LaunchStep::Exec: what = "cannot execute " + program; break;
            case LaunchStep::ParentGone: return makeError("launch: cannot start " + l.argv[0] + ": exiting");
        }
        return makeError("launch: cannot start " + l.argv[0] + ": " + what + ": " + std::strerror(report[1]));
    }
    s->m_pid = pid;
    return s;
}

LaunchedServer::~LaunchedServer() { stop(); }

bool LaunchedServer::running() {
    if (m_reaped || m_pid <= 0) return false;
    int status = 0;
    const pid_t r = waitpid(m_pid, &status, WNOHANG);
    if (r == 0) return true;
    m_reaped = true;
    if (r < 0)
        m_exit = "its state cannot be read";
    else if (WIFEXITED(status))
        m_exit = "exited with status " + std::to_string(WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        m_exit = "killed by signal " + std::to_string(WTERMSIG(status));
    return false;
}

int64_t LaunchedServer::peakRssBytes() const {
    if (m_reaped || m_pid <= 0) return -1;
    std::ifstream f("/proc/" + std::to_string(m_pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
    return -1;
}

std::string LaunchedServer::logTail(size_t maxBytes) const {
    std::ifstream f(m_log, std::ios::binary);
    if (!f) return {};
    f.seekg(0, std::ios::end);
    const auto size = size_t(std::max<std::streamoff>(0, f.tellg()));
    const size_t from = size > maxBytes ? size - maxBytes : 0;
    f.seekg(std::streamoff(from));
    std::string out(size - from, '\0');
    f.read(out.data(), std::streamsize(out.size()));
    return out;
}

void LaunchedServer::stop(int graceMs) {
    if (m_pid <= 0 || m_reaped) return;
    kill(-m_pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(graceMs);
    while (running() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!m_reaped) {
        kill(-m_pid, SIGKILL);
        int status = 0;
        waitpid(m_pid, &status, 0);
        m_reaped = true;
        m_exit = "killed after " + std::to_string(graceMs) + " ms without exiting on SIGTERM";
    }
    kill(-m_pid, SIGKILL);  // whatever of its group is left (children that ignored SIGTERM)
}

int freeLocalPort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

Result<std::unique_ptr<PluginTarget>> openWhenReady(const TargetPlugin& plugin, const RemoteTargetConfig& config,
                                                    LaunchedServer& server, int timeoutSeconds,
                                                    const std::atomic<bool>* cancel) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::max(1, timeoutSeconds));
    std::string last;
    for (;;) {
        if (!server.running())
            return makeError(plugin.info().id + ": the launched server " + server.exitDescription() +
                             " before it answered; its log (" + server.logPath() + ") ends:\n" + server.logTail(1200));
        auto t = plugin.open(config);
        if (t) return t;
        last = t.error().message;
        if (cancel && *cancel) return makeError("cancelled while the launched server was starting");
        if (std::chrono::steady_clock::now() >= deadline)
            return makeError(plugin.info().id + ": the launched server did not answer within " +
                             std::to_string(timeoutSeconds) + " s (" + last + "); its log (" + server.logPath() +
                             ") ends:\n" + server.logTail(1200));
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

}  // namespace wb
