#include "bridge/compare_runner.h"

#include <QFileInfo>
#include <QThreadPool>
#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "api/engine.h"
#include "api/load_test.h"
#include "api/bench_report.h"
#include "api/devices.h"
#include "api/model_types.h"
#include "api/target_plugins.h"

using nlohmann::json;

namespace wbgui {

int CompareWorkload::requestsPerTarget() const {
    int n = 0;
    for (int c : concurrency) n += requestsPerLevel > 0 ? requestsPerLevel : qMax(4 * c, 8);
    return n;
}

/// Shared by the runner and its pool thread: the thread posts to `target` only under the mutex, and the runner
/// clears it under the same mutex before it dies (the pattern of EngineBridge::Relay).
struct CompareRunner::Shared {
    std::mutex mutex;
    CompareRunner* target = nullptr;
    std::atomic<bool> cancel{false};

    template <typename F>
    void post(F&& fn) {
        std::lock_guard lock(mutex);
        if (target) QMetaObject::invokeMethod(target, std::forward<F>(fn), Qt::QueuedConnection);
    }
};

namespace {

wb::TargetPluginRegistry scanPlugins(const QString& extraDir) {
    wb::TargetPluginRegistry reg;
    std::vector<std::string> dirs;
    if (!extraDir.isEmpty()) dirs.push_back(extraDir.toStdString());
    for (auto& d : wb::TargetPluginRegistry::defaultSearchPath()) dirs.push_back(d);
    reg.scan(dirs);
    return reg;
}

/// Resets the kernel's peak-RSS mark for this process ("5" to clear_refs, Linux 4.0+), so the peak read after a
/// run belongs to that run and not to an earlier engine or the GUI's own start.
bool resetPeakRss() {
    std::ofstream f("/proc/self/clear_refs");
    if (!f) return false;
    f << "5";
    f.flush();
    return bool(f);
}

json runEngineTarget(const CompareTargetSpec& spec, json run, std::unique_ptr<wb::Engine>& engine, int maxConc,
                     int64_t& baselineRss, bool& peakReset) {
    wb::EngineOptions eo;
    eo.modelPath = spec.modelPath.toStdString();
    auto prec = wb::parsePrecision(spec.precision.toStdString());
    run["target"] = "engine";
    run["engine"] = "workbench";
    run["model"] = eo.modelPath;
    run["precision"] = spec.precision.toStdString();
    run["label"] = spec.label.isEmpty() ? "workbench (" + spec.precision.toStdString() + ")" : spec.label.toStdString();
    if (!prec) {
        run["error"] = prec.error().message;
        return run;
    }
    eo.load.precision = *prec;
    eo.load.numThreads = spec.numThreads;
    eo.maxNumSeqs = std::max(64, maxConc);
    peakReset = resetPeakRss();
    baselineRss = wb::processRssBytes();
    auto e = wb::Engine::create(eo);
    if (!e) {
        run["error"] = e.error().message;
        return run;
    }
    engine = std::move(*e);
    run["precision"] = wb::precisionName(*prec);
    run["device"] = engine->stats().device;
    return run;
}

}  // namespace

CompareRunner::CompareRunner(QObject* parent) : QObject(parent), m_shared(std::make_shared<Shared>()) {
    m_shared->target = this;
    reloadPlugins();
}

CompareRunner::~CompareRunner() {
    m_shared->cancel = true;
    std::lock_guard lock(m_shared->mutex);
    m_shared->target = nullptr;
}

void CompareRunner::reloadPlugins(const QString& extraDir) {
    m_extraPluginDir = extraDir;
    const wb::TargetPluginRegistry reg = scanPlugins(extraDir);
    m_plugins.clear();
    m_problems.clear();
    for (const auto& p : reg.plugins()) {
        const wb::TargetPluginInfo& i = p->info();
        m_plugins.push_back({QString::fromStdString(i.id), QString::fromStdString(i.name),
                             QString::fromStdString(i.version), QString::fromStdString(i.defaultUrl),
                             QString::fromStdString(i.launchTemplate), QString::fromStdString(i.memoryReport),
                             QString::fromStdString(i.kvReport)});
    }
    for (const auto& pr : reg.problems())
        m_problems << QStringLiteral("%1: %2").arg(QFileInfo(QString::fromStdString(pr.path)).fileName(),
                                                   QString::fromStdString(pr.reason));
}

void CompareRunner::cancel() {
    if (m_running) m_shared->cancel = true;
}

bool CompareRunner::start(const QList<CompareTargetSpec>& targets, const CompareWorkload& w) {
    if (m_running || targets.isEmpty() || w.concurrency.isEmpty()) return false;
    m_running = true;
    // A fresh Shared per run: a cancelled run still draining must not see the next run's flag.
    {
        std::lock_guard lock(m_shared->mutex);
        m_shared->target = nullptr;
    }
    m_shared = std::make_shared<Shared>();
    m_shared->target = this;
    std::shared_ptr<Shared> shared = m_shared;
    const QString pluginDir = m_extraPluginDir;

    QThreadPool::globalInstance()->start([shared, targets, w, pluginDir] {
        const int perTarget = w.requestsPerTarget();
        const int total = perTarget * int(targets.size());
        int maxConc = 1;
        for (int c : w.concurrency) maxConc = std::max(maxConc, c);
        // Plugins are loaded on this thread: a plugin's constructor code never runs on the GUI thread.
        wb::TargetPluginRegistry plugins = scanPlugins(pluginDir);
        // The images are read and decoded here, on this pool thread, once for every target.
        std::unique_ptr<wb::ImageWorkload> images;
        std::string imageError;
        json imageList = json::array();
        if (!w.images.isEmpty()) {
            std::vector<std::string> paths;
            for (const QString& path : w.images) paths.push_back(path.toStdString());
            auto made = wb::ImageWorkload::fromFiles(paths, !w.sameImages);
            if (made) {
                images = std::move(*made);
                imageList = wb::imageWorkloadJson(*images);
            } else {
                imageError = "workload image: " + made.error().message;
            }
        }
        for (int i = 0; i < targets.size(); ++i) {
            if (shared->cancel) break;
            const CompareTargetSpec& spec = targets[i];
            const int doneBefore = i * perTarget;
            json run{{"version", WB_VERSION},
                     {"input_tokens", w.inputTokens},
                     {"output_tokens", w.outputTokens},
                     {"p99_limit_ms", w.p99LimitMs},
                     {"request_rate", w.requestRate},
                     {"seed", w.seed},
                     {"source", "workbench compare view"}};
            if (!w.images.isEmpty()) {
                run["images"] = imageList;
                run["distinct_images"] = !w.sameImages;
            }
            std::unique_ptr<wb::Engine> engine;
            std::unique_ptr<wb::PluginTarget> remote;
            std::unique_ptr<wb::ServerSampler> sampler;
            wb::BenchTarget* target = nullptr;
            int64_t baselineRss = 0;
            bool peakReset = false;
            int vocab = 32000;
            QString label = spec.label;
            if (spec.kind == CompareTargetSpec::Kind::Engine) {
                shared->post([shared, i, spec] {
                    if (auto* t = shared->target)
                        Q_EMIT t->targetStarted(i, spec.label.isEmpty() ? "workbench (" + spec.precision + ")"
                                                                        : spec.label);
                });
                if (imageError.empty()) {  // no model is loaded for a workload that cannot run
                    run = runEngineTarget(spec, run, engine, maxConc, baselineRss, peakReset);
                    if (engine) {
                        vocab = int(engine->modelConfig().vocabSize);
                        target = new wb::EngineTarget(*engine);
                    }
                }
            } else {
                const std::string id = spec.pluginId.toStdString();
                run["target"] = "http";
                run["plugin"] = id;
                run["url"] = spec.url.toStdString();
                run["model"] = spec.modelName.toStdString();
                run["device"] = "remote";
                auto plugin = plugins.find(id);
                const std::string name = plugin ? plugin->info().name : id;
                run["engine"] = name;
                run["label"] = spec.label.isEmpty() ? name + " @ " + spec.url.toStdString() : spec.label.toStdString();
                const QString startLabel = QString::fromStdString(run["label"].get<std::string>());
                shared->post([shared, i, startLabel] {
                    if (auto* t = shared->target) Q_EMIT t->targetStarted(i, startLabel);
                });
                if (!plugin) {
                    run["error"] = "no target plugin \"" + id + "\" on the plugin path";
                } else if (imageError.empty()) {
                    run["plugin_version"] = plugin->info().version;
                    wb::RemoteTargetConfig rc;
                    rc.url = spec.url.toStdString();
                    rc.model = spec.modelName.toStdString();
                    rc.apiKey = spec.apiKey.toStdString();
                    if (!w.images.isEmpty()) rc.endpoint = "chat";  // images go as image_url parts
                    auto t = plugin->open(rc);
                    if (!t) {
                        run["error"] = t.error().message;
                    } else {
                        remote = std::move(*t);
                        run["model"] = remote->modelName();
                        if (spec.label.isEmpty()) run["label"] = name + " (" + remote->modelName() + ")";
                        std::string detail;
                        run["health"] = {{"ok", remote->healthy(&detail)}, {"detail", detail}};
                        sampler = std::make_unique<wb::ServerSampler>(*remote);
                        target = remote.get();
                        if (spec.vocabSize > 0) vocab = spec.vocabSize;
                    }
                }
            }
            std::unique_ptr<wb::BenchTarget> ownedEngineTarget(engine ? target : nullptr);
            if (!imageError.empty()) run["error"] = imageError;  // the run's error, never numbers
            json results = json::array();
            run["results"] = results;
            run["max_stable_concurrency"] = 0;
            int best = 0, doneLevels = 0;
            if (target) {
                shared->post([shared, i, r = QByteArray::fromStdString(run.dump())] {
                    if (auto* t = shared->target) Q_EMIT t->targetUpdated(i, r, false);
                });
                for (int conc : w.concurrency) {
                    if (shared->cancel) break;
                    wb::LoadTestOptions lo;
                    lo.concurrency = conc;
                    lo.numRequests = w.requestsPerLevel;
                    lo.inputTokens = w.inputTokens;
                    lo.outputTokens = w.outputTokens;
                    lo.vocabSize = vocab;
                    lo.seed = w.seed;
                    lo.warmupRequests = w.warmupRequests;
                    lo.requestRate = w.requestRate;
                    lo.cancel = &shared->cancel;
                    lo.images = images.get();
                    const QString what = QStringLiteral("%1, concurrency %2")
                                             .arg(QString::fromStdString(run["label"].get<std::string>()))
                                             .arg(conc);
                    lo.onProgress = [shared, doneBefore, doneLevels, total, what](int finished, int) {
                        shared->post([shared, done = doneBefore + doneLevels + finished, total, what] {
                            if (auto* t = shared->target) Q_EMIT t->progress(done, total, what);
                        });
                    };
                    const wb::LoadTestResult r = wb::runLoadTest(*target, lo);
                    doneLevels += w.requestsPerLevel > 0 ? w.requestsPerLevel : std::max(4 * conc, 8);
                    const bool stable = !r.cancelled && r.errors == 0 && r.requests > 0 &&
                                        (w.p99LimitMs <= 0 || r.e2eMs.p99 <= w.p99LimitMs);
                    if (stable) best = std::max(best, conc);
                    results.push_back(wb::loadTestJson(r, stable));
                    run["results"] = results;
                    run["max_stable_concurrency"] = best;
                    shared->post([shared, i, rj = QByteArray::fromStdString(run.dump())] {
                        if (auto* t = shared->target) Q_EMIT t->targetUpdated(i, rj, false);
                    });
                }
            }
            if (shared->cancel) run["cancelled"] = true;
            // Memory: only what was measured.
            json mem;
            if (engine) {
                const wb::StatsSnapshot st = engine->stats();
                const int64_t hwm = wb::processPeakRssBytes();
                const bool ok = peakReset && hwm > 0 && baselineRss > 0;
                mem = wb::engineMemoryJson(st.weightBytes, st.kvCacheBytes,
                                           ok ? std::max<int64_t>(0, hwm - baselineRss) : -1);
            } else if (sampler) {
                const wb::ServerSample peak = sampler->stop();
                mem = {{"peak_bytes", peak.memoryBytes ? json(*peak.memoryBytes) : json(nullptr)},
                       {"source", peak.memorySource},
                       {"kv_usage_peak", peak.kvUsage ? json(*peak.kvUsage) : json(nullptr)},
                       {"kv_source", peak.kvSource}};
            }
            if (!mem.is_null()) run["memory"] = mem;
            sampler.reset();
            ownedEngineTarget.reset();
            remote.reset();   // joins its request threads
            engine.reset();   // joins the engine's loop: this is a pool thread, never the GUI's
            shared->post([shared, i, rj = QByteArray::fromStdString(run.dump())] {
                if (auto* t = shared->target) Q_EMIT t->targetUpdated(i, rj, true);
            });
        }
        const bool cancelled = shared->cancel;
        shared->post([shared, cancelled] {
            if (auto* t = shared->target) {
                t->m_running = false;
                Q_EMIT t->finished(cancelled);
            }
        });
    });
    return true;
}

}  // namespace wbgui
