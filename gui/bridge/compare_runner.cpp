#include "bridge/compare_runner.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcessEnvironment>
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
#include "api/tokenizer.h"

using nlohmann::json;

namespace wbgui {

int CompareWorkload::requestsPerTarget() const {
    int n = 0;
    for (int c : concurrency) n += requestsPerLevel > 0 ? requestsPerLevel : qMax(4 * c, 8);
    return n;
}

QString toolsDir() {
    const QString env = qEnvironmentVariable("WB_TOOLS_DIR");
    if (!env.isEmpty()) return env;
#ifdef WB_TOOLS_SOURCE_DIR
    if (QFileInfo(QStringLiteral(WB_TOOLS_SOURCE_DIR)).isDir()) return QStringLiteral(WB_TOOLS_SOURCE_DIR);
#endif
    return QString();
}

bool findArticleModels(const QString& path, ArticleModels* out, QString* error) {
    ArticleModels m;
    const QFileInfo fi(path);
    QString dir;
    if (fi.isDir()) {
        dir = fi.absoluteFilePath();
        auto file = [&](const char* name) {
            const QString f = dir + QLatin1Char('/') + QLatin1String(name);
            return QFileInfo(f).isFile() ? f : QString();
        };
        m.engineGguf = file("f32.gguf");
        if (m.engineGguf.isEmpty()) m.engineGguf = file("f16.gguf");
        m.llamaF16 = file("f16.gguf");
        m.llamaQ8 = file("q8_0.gguf");
    } else if (fi.isFile() && fi.suffix().compare(QLatin1String("gguf"), Qt::CaseInsensitive) == 0) {
        dir = fi.absolutePath();
        m.engineGguf = fi.absoluteFilePath();
        m.llamaOnEngineFile = true;
    }
    if (m.engineGguf.isEmpty()) {
        if (error)
            *error = QStringLiteral("%1: give a folder with hf/ and f32.gguf (f16.gguf, q8_0.gguf) as "
                                    "tools/article-table makes, or a GGUF file with an hf/ folder beside it")
                         .arg(path);
        return false;
    }
    if (QFileInfo(dir + QStringLiteral("/hf/config.json")).isFile()) {
        m.hfDir = dir + QStringLiteral("/hf");
        QFile f(m.hfDir + QStringLiteral("/config.json"));
        if (f.open(QIODevice::ReadOnly)) {
            const QJsonObject cfg = QJsonDocument::fromJson(f.read(1 << 20)).object();
            QJsonObject text = cfg.value(QStringLiteral("text_config")).toObject();
            m.vocabSize = cfg.value(QStringLiteral("vocab_size")).toInt(text.value(QStringLiteral("vocab_size")).toInt());
        }
    }
    *out = m;
    return true;
}

QList<CompareTargetSpec> articlePresetTargets(const ArticleModels& m, int maxConc, qint64 maxContext,
                                              QStringList* notes) {
    QList<CompareTargetSpec> out;
    for (const char* prec : {"fp32", "bf16", "int8"}) {
        CompareTargetSpec s;
        s.kind = CompareTargetSpec::Kind::Engine;
        s.modelPath = m.engineGguf;
        s.precision = QString::fromLatin1(prec);
        s.numThreads = m.threads;
        s.label = QStringLiteral("workbench (%1)").arg(s.precision);
        out << s;
    }
    const QString tools = toolsDir();
    const QString threads = QString::number(std::max(1, m.threads));
    maxConc = std::max(1, maxConc);
    if (m.hfDir.isEmpty()) {
        if (notes) *notes << QStringLiteral("no hf/ folder beside the GGUF: no HF Transformers rows");
    } else if (tools.isEmpty() || !QFileInfo(tools + QStringLiteral("/hf-serve/hf_serve.py")).isFile()) {
        if (notes) *notes << QStringLiteral("tools/hf-serve/hf_serve.py not found (set WB_TOOLS_DIR): no HF Transformers rows");
    } else {
        QString python = qEnvironmentVariable("WB_HF_PYTHON");
        if (python.isEmpty())
            python = QFileInfo::exists(QStringLiteral("/usr/bin/python3")) ? QStringLiteral("/usr/bin/python3")
                                                                          : QStringLiteral("python3");
        QString site = qEnvironmentVariable("WB_HF_PYTHONPATH");
        if (site.isEmpty() && QFileInfo(QDir::homePath() + QStringLiteral("/.cache/hf-reference/site")).isDir())
            site = QDir::homePath() + QStringLiteral("/.cache/hf-reference/site");
        for (const auto& [prec, dtype] : {std::pair{"fp32", "float32"}, std::pair{"bf16", "bfloat16"}}) {
            CompareTargetSpec s;
            s.kind = CompareTargetSpec::Kind::Remote;
            s.pluginId = QStringLiteral("transformers");
            s.label = QStringLiteral("HF Transformers (%1)").arg(QLatin1String(prec));
            s.vocabSize = m.vocabSize;
            s.tokenizerPath = m.hfDir;  // an image workload's chat text
            s.launchCommand = {python, tools + QStringLiteral("/hf-serve/hf_serve.py"), QStringLiteral("--model"),
                               m.hfDir, QStringLiteral("--dtype"), QLatin1String(dtype), QStringLiteral("--threads"),
                               threads, QStringLiteral("--max-batch"), QString::number(maxConc),
                               QStringLiteral("--port"), QStringLiteral("{port}")};
            s.launchEnv << QStringLiteral("OMP_NUM_THREADS=") + threads;
            if (!site.isEmpty()) {
                const QString old = qEnvironmentVariable("PYTHONPATH");
                s.launchEnv << QStringLiteral("PYTHONPATH=") + site + (old.isEmpty() ? QString() : ":" + old);
            }
            const QString blas = qEnvironmentVariable("WB_HF_BLAS_DIR");
            if (!blas.isEmpty()) {
                const QString old = qEnvironmentVariable("LD_LIBRARY_PATH");
                s.launchEnv << QStringLiteral("LD_LIBRARY_PATH=") + blas + (old.isEmpty() ? QString() : ":" + old);
            }
            out << s;
        }
    }
    QList<std::pair<QString, QString>> llama;  // (label precision, file)
    if (!m.llamaF16.isEmpty()) llama.append({QStringLiteral("F16"), m.llamaF16});
    if (!m.llamaQ8.isEmpty()) llama.append({QStringLiteral("Q8_0"), m.llamaQ8});
    if (llama.isEmpty() && m.llamaOnEngineFile) llama.append({QFileInfo(m.engineGguf).fileName(), m.engineGguf});
    const QString serveMjs = tools + QStringLiteral("/llamacpp-yardstick/serve.mjs");
    if (llama.isEmpty()) {
        if (notes) *notes << QStringLiteral("no f16.gguf / q8_0.gguf: no llama.cpp rows");
    } else if (tools.isEmpty() || !QFileInfo(serveMjs).isFile()) {
        if (notes) *notes << QStringLiteral("tools/llamacpp-yardstick/serve.mjs not found (set WB_TOOLS_DIR): no llama.cpp rows");
    } else {
        const qint64 ctx = std::max<qint64>(4096, qint64(maxConc) * maxContext * 2);
        for (const auto& [prec, file] : llama) {
            CompareTargetSpec s;
            s.kind = CompareTargetSpec::Kind::Remote;
            s.pluginId = QStringLiteral("llamacpp");
            s.label = QStringLiteral("llama.cpp via node-llama-cpp (%1)").arg(prec);
            s.vocabSize = m.vocabSize;
            s.tokenizerPath = file;
            s.launchCommand = {QStringLiteral("node"), serveMjs, QStringLiteral("--model"), file,
                               QStringLiteral("--threads"), threads, QStringLiteral("--parallel"),
                               QString::number(maxConc), QStringLiteral("--ctx"), QString::number(ctx),
                               QStringLiteral("--port"), QStringLiteral("{port}")};
            out << s;
        }
    }
    return out;
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
            std::unique_ptr<wb::LaunchedServer> server;  // declared before `remote`: outlives it
            std::unique_ptr<wb::Tokenizer> tokenizer;     // the remote target's detokenizer uses it
            wb::BenchTarget* target = nullptr;
            const wb::Tokenizer* textPrompts = nullptr;  // an image workload's text prompts round-trip through it
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
                        // Ids the tokenizer knows, as a server's run draws them (wb bench does the same).
                        if (engine->tokenizer().vocabSize() > 0)
                            vocab = std::min(vocab, int(engine->tokenizer().vocabSize()));
                        target = new wb::EngineTarget(*engine);
                        if (!w.images.isEmpty()) textPrompts = &engine->tokenizer();
                        run["request_format"] = w.images.isEmpty() ? "token ids (in process)"
                                                                   : "chat messages: the images, then the prompt "
                                                                     "decoded by the model's tokenizer (in process)";
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
                    wb::Result<std::unique_ptr<wb::PluginTarget>> t = wb::makeError("not opened");
                    if (!w.images.isEmpty() && !spec.tokenizerPath.isEmpty()) {
                        // The engine target's chat (images, then the decoded prompt), not ids.
                        auto tk = wb::Tokenizer::fromModelPath(spec.tokenizerPath.toStdString());
                        if (tk) {
                            tokenizer = std::move(*tk);
                            const wb::Tokenizer* raw = tokenizer.get();
                            rc.detokenize = [raw](const std::vector<int32_t>& ids) { return raw->decode(ids); };
                            vocab = int(raw->vocabSize());
                            textPrompts = raw;
                        } else {
                            run["tokenizer_error"] = tk.error().message;
                        }
                    }
                    if (!spec.launchCommand.isEmpty()) {
                        // The run starts this server itself, on a port the kernel just handed out.
                        const int port = wb::freeLocalPort();
                        wb::ServerLaunch sl;
                        std::string line;
                        for (QString a : spec.launchCommand) {
                            a.replace(QStringLiteral("{port}"), QString::number(port));
                            sl.argv.push_back(a.toStdString());
                            line += (line.empty() ? "" : " ") + sl.argv.back();
                        }
                        for (const QString& e : spec.launchEnv) sl.env.push_back(e.toStdString());
                        sl.workDir = spec.launchWorkDir.toStdString();
                        rc.url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
                        run["url"] = rc.url;
                        shared->post([shared, doneBefore, total, startLabel] {
                            if (auto* t = shared->target)
                                Q_EMIT t->progress(doneBefore, total, QStringLiteral("%1: starting its server").arg(startLabel));
                        });
                        auto started = port > 0 ? wb::LaunchedServer::start(sl)
                                                : wb::Result<std::unique_ptr<wb::LaunchedServer>>(
                                                      wb::makeError("no free local port for the server"));
                        if (!started) {
                            t = wb::makeError(started.error().message);
                        } else {
                            server = std::move(*started);
                            run["launch"] = {{"command", line}, {"log", server->logPath()}, {"pid", server->pid()}};
                            t = wb::openWhenReady(*plugin, rc, *server, spec.launchTimeoutS, &shared->cancel);
                        }
                    } else {
                        t = plugin->open(rc);
                    }
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
                        if (!w.images.isEmpty())
                            run["request_format"] = rc.detokenize && plugin->apiVersion() >= 2
                                                        ? "chat messages: the images, then the prompt decoded by the "
                                                          "model's tokenizer (plugin startChat)"
                                                        : "images with the prompt as ids (no tokenizer or a version-1 plugin)";
                        else
                            run["request_format"] = "token ids (/completions)";
                        if (plugin->apiVersion() < 2) textPrompts = nullptr;  // its images go with ids, not text
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
                    lo.textPrompts = textPrompts;
                    const QString what = QStringLiteral("%1, concurrency %2")
                                             .arg(QString::fromStdString(run["label"].get<std::string>()))
                                             .arg(conc);
                    lo.onProgress = [shared, doneBefore, doneLevels, total, what](int finished, int) {
                        shared->post([shared, done = doneBefore + doneLevels + finished, total, what] {
                            if (auto* t = shared->target) Q_EMIT t->progress(done, total, what);
                        });
                    };
                    const wb::LoadTestResult r = wb::runLoadTest(*target, lo);
                    run["prompts"] = wb::promptsNote(r.textPrompts, run.value("request_format", ""));
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
            if (server) {
                // A launched server's own peak RSS, read before it stops: used for the table only where the server
                // reports no memory itself, and then named as what it is.
                const int64_t hwm = server->peakRssBytes();
                if (hwm > 0) {
                    if (mem.is_null()) mem = json::object();
                    mem["process_peak_rss_bytes"] = hwm;
                    if (!mem.contains("peak_bytes") || mem["peak_bytes"].is_null()) {
                        mem["peak_bytes"] = hwm;
                        mem["source"] = "process peak RSS (VmHWM of the launched server, read from /proc; the "
                                        "server reports none)";
                    }
                }
            }
            if (!mem.is_null()) run["memory"] = mem;
            sampler.reset();
            ownedEngineTarget.reset();
            remote.reset();   // joins its request threads
            if (server) server->stop();  // before the next target starts: they would share the cores
            server.reset();
            tokenizer.reset();
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
