// Comparison targets loaded at run time (plugins/): finds shared libraries on the plugin path, checks each one's
// API version, entry symbol and JSON metadata, and keeps the good ones. A broken or incompatible plugin is
// reported (problems()) and skipped, never fatal: one bad file must not take `wb bench` or the GUI down with it.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/load_test.h"
#include "core/result.h"
#include "api/target_plugin_api.h"

namespace wb {

struct TargetPluginInfo {
    std::string id;             // what --target takes: "openai", "vllm", "trtllm", ...
    std::string name;           // "vLLM"
    std::string version;        // the plugin's own version, "1.0.0"
    std::string compatVersion;  // the oldest version it can stand in for
    std::string description;
    std::string defaultUrl;     // where the server listens when launched with the template's defaults
    std::string endpoint;       // "completions" or "chat": what the flavour benchmarks by default
    std::string launchTemplate; // "vllm serve {model} --tensor-parallel-size {tp} ..."
    std::string healthProbe;    // "{root}/health" or "{base}/models"
    std::string memoryReport;   // where the server reports memory, or why it is n/a
    std::string kvReport;       // likewise for KV-cache use
    std::string path;           // the library file
    nlohmann::json metadata;
};

struct PluginProblem {
    std::string path;
    std::string reason;
};

struct RemoteTargetConfig {
    std::string url;    // OpenAI base URL, e.g. http://127.0.0.1:8000/v1
    std::string model;  // empty: the server's first listed model
    std::string apiKey;
    std::string endpoint;  // empty: the flavour's default
    bool ignoreEos = true;
    /// Prompt ids -> text with the model's own tokenizer. Given, a chat or image request reaches a version-2
    /// plugin as the chat the engine target gets (one user message: the images, then this text) through
    /// startChat; without it (or with a version-1 plugin) requests go as token ids (startImages with images).
    std::function<std::string(const std::vector<int32_t>&)> detokenize;
};

/// One reading of what the server itself reports; nullopt where it reports nothing (never an estimate).
struct ServerSample {
    std::optional<double> memoryBytes;
    std::string memorySource;
    std::optional<double> kvUsage;  // 0..1
    std::string kvSource;
};

class TargetPlugin;

/// A BenchTarget served through a plugin. Thread-safe as BenchTarget is; destruction waits for running requests.
class PluginTarget : public BenchTarget {
public:
    ~PluginTarget() override;
    std::string name() const override;
    /// When the plugin has startImages (and was opened for the chat endpoint, which the CLI does for images).
    bool acceptsImages() const override;
    void start(const BenchRequest& request, std::function<void(const Event&)> onEvent) override;
    const std::string& modelName() const { return m_model; }
    const TargetPlugin& plugin() const { return *m_plugin; }
    /// The flavour's health probe; `detail` says why when unhealthy.
    bool healthy(std::string* detail = nullptr);
    ServerSample sample();

private:
    friend class TargetPlugin;
    PluginTarget(std::shared_ptr<const TargetPlugin> plugin, void* handle, std::string url);
    bool chatCapable() const;
    std::shared_ptr<const TargetPlugin> m_plugin;
    std::function<std::string(const std::vector<int32_t>&)> m_detokenize;
    bool m_chat = false;  // opened for the chat endpoint
    void* m_handle;
    std::string m_url;
    std::string m_model;
};

class TargetPlugin : public std::enable_shared_from_this<TargetPlugin> {
public:
    const TargetPluginInfo& info() const { return m_info; }
    /// The plugin API version the library was built for (WB_TARGET_PLUGIN_API_VERSION_MIN ..
    /// WB_TARGET_PLUGIN_API_VERSION).
    uint32_t apiVersion() const { return m_apiVersion; }
    /// Connects to a server; an unreachable one is an error here (reported as unreachable, not as numbers).
    Result<std::unique_ptr<PluginTarget>> open(const RemoteTargetConfig& config) const;
    /// The launch template with {key} replaced from `values`; keys not given stay as {key}.
    std::string launchLine(const std::map<std::string, std::string>& values) const;

private:
    friend class TargetPluginRegistry;
    friend class PluginTarget;
    TargetPluginInfo m_info;
    const WbTargetPlugin* m_table = nullptr;
    uint32_t m_apiVersion = 0;
    void* m_library = nullptr;  // never closed: see TargetPluginRegistry::loadFile
};

class TargetPluginRegistry {
public:
    /// WB_PLUGIN_PATH (colon-separated), then <exe>/../plugins (the build tree) and <exe>/../lib/workbench/plugins
    /// (the installed layout).
    static std::vector<std::string> defaultSearchPath();
    /// Loads every *.so in the folders (missing folders are skipped silently: the path lists candidates).
    void scan(const std::vector<std::string>& dirs);
    /// Loads one library; false (and a problem recorded) when it is broken, incompatible or a duplicate.
    bool loadFile(const std::string& path);

    const std::vector<std::shared_ptr<TargetPlugin>>& plugins() const { return m_plugins; }
    const std::vector<PluginProblem>& problems() const { return m_problems; }
    std::shared_ptr<const TargetPlugin> find(const std::string& id) const;

private:
    std::vector<std::shared_ptr<TargetPlugin>> m_plugins;
    std::vector<PluginProblem> m_problems;
};

/// A server the workbench starts itself (the Compare view's launched targets): one child process in its own
/// process group, stdout and stderr to a log file, stopped with SIGTERM to the group (then SIGKILL after a grace
/// period) when this object dies, so python/node servers and their children never outlive the run. If this process
/// dies without stopping it (a crash, SIGKILL), the child gets SIGTERM from the kernel (PR_SET_PDEATHSIG): servers
/// such as vLLM, SGLang and trtllm-serve then stop their own workers. That signal follows the *thread* that called
/// start(): start and stop a server on one thread that outlives it (the Compare runner's task does). Nothing but
/// stdin (/dev/null), stdout and stderr (the log) is inherited: no socket or file of this process stays open in it.
struct ServerLaunch {
    std::vector<std::string> argv;  // argv[0] is looked up on PATH (the launch's own, when env sets one)
    std::vector<std::string> env;   // "KEY=VALUE" set on top of this process's environment
    std::string workDir;            // empty: this process's
    std::string logPath;            // empty: a file under the temp folder
};

class LaunchedServer {
public:
    static Result<std::unique_ptr<LaunchedServer>> start(const ServerLaunch& launch);
    ~LaunchedServer();  // stop()
    int pid() const { return m_pid; }
    /// False once the process has exited (then exitDescription() says how).
    bool running();
    std::string exitDescription() const { return m_exit; }
    /// The process's peak resident set (VmHWM in /proc/PID/status); -1 when it cannot be read (exited, not Linux).
    int64_t peakRssBytes() const;
    /// The last `maxBytes` of its log.
    std::string logTail(size_t maxBytes = 2000) const;
    const std::string& logPath() const { return m_log; }
    /// SIGTERM to its group, SIGKILL after graceMs; idempotent.
    void stop(int graceMs = 20000);

private:
    LaunchedServer() = default;
    int m_pid = -1;
    bool m_reaped = false;
    std::string m_exit;
    std::string m_log;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick), or -1.
int freeLocalPort();

/// Opens a target on a server that is still starting: retries plugin.open every 500 ms until it answers, the
/// server exits (an error with its log's tail), `cancel` is set or timeoutSeconds pass.
Result<std::unique_ptr<PluginTarget>> openWhenReady(const TargetPlugin& plugin, const RemoteTargetConfig& config,
                                                    LaunchedServer& server, int timeoutSeconds,
                                                    const std::atomic<bool>* cancel = nullptr);

/// "1.2.3" compared part by part; false from parseVersion when it is not dotted numbers.
bool parseVersion(const std::string& s, std::vector<int>& out);
int compareVersions(const std::vector<int>& a, const std::vector<int>& b);

/// Samples a PluginTarget on its own thread while a run goes, keeping the peaks the server reported.
class ServerSampler {
public:
    ServerSampler(PluginTarget& target, int intervalMs = 250);
    ~ServerSampler();  // stops
    /// Stops sampling (takes one last sample) and returns the peaks.
    ServerSample stop();

private:
    struct State;
    std::shared_ptr<State> m_state;
};

}  // namespace wb
