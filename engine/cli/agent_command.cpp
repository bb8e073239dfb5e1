// `wb agent`: the phone agent's loop, headless (issue #15). A folder of screenshots is replayed, one per step, or
// a live phone is driven through adb, against the engine (-m MODEL) or an OpenAI-compatible server (--url); each
// step's action is parsed, drawn on its screenshot and written with its timings to RUN_DIR (trace.json,
// screens/, annotated/). Only api/ headers.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>

#include "api/agent.h"
#include "api/engine.h"
#include "api/model_types.h"

namespace wb::cli {

namespace {

const char* kAgentUsage = R"(usage: wb agent (-m MODEL | --url URL) --task "..." (--screens DIR | --adb [SERIAL]) --out RUN_DIR
                [options]

Runs the phone agent of AutoGLM-Phone-9B over a folder of screenshots (PNG/JPEG, one per step, in name order:
each next screenshot stands for the phone's answer), or over a live Android phone through adb. Actions are parsed
and drawn; on a phone they are sent only with --execute.

  -m, --model PATH        the engine in this process (a vision model: GLM-4.1V / AutoGLM-Phone-9B layout)
  --url URL               an OpenAI-compatible server instead, e.g. http://127.0.0.1:8000/v1
  --model-name N          the server's model id (default: the first it lists); --api-key K
  --task TEXT             what the agent must do
  --screens DIR           the screenshots
  --adb [SERIAL]          a phone through adb (`adb -s SERIAL`; without one: the one device attached)
  --execute               send the actions to the phone (default: drawn and recorded, not sent)
  --confirm ask|yes|no    with --execute, a sensitive tap (one with a message) and Take_over / Interact need a
                          decision: ask (default) asks on the terminal (y/n; Take_over: Enter when done) and
                          refuses when stdin is not a terminal; yes taps and goes on; no declines (the run ends)
  --apps FILE             Launch's app table: lines "NAME = PACKAGE" added to (or replacing) the built-in ones
  --out RUN_DIR           the run: trace.json, screens/step_NNN.png, annotated/step_NNN.png
  --max-steps N           step limit (default 20)
  --max-tokens N          per step (default 3000, the reference agent's)
  --system-file F         the system prompt from a file ({date} is filled in); default: the built-in preset
  --date TEXT             the date written into the system prompt (default: today)
  --on-parse-error stop|continue   an answer that does not parse ends the run (default) or is recorded
  --json                  print each step as one JSON line on stdout
  -t, --threads N  --precision P  --device D  --max-pixels N  --kv-cache-dtype T
                          engine options, as for `wb ask`; the context is the phone agent's 25,480 tokens
                          (its vLLM --max-model-len), in an f16 KV cache on the CPU unless --kv-cache-dtype f32
)";

volatile std::sig_atomic_t g_interrupted = 0;
std::atomic<bool> g_cancel{false};

int usageError(const std::string& msg) {
    std::fprintf(stderr, "wb agent: %s\n\n%s", msg.c_str(), kAgentUsage);
    return 2;
}

int fail(const std::string& msg) {
    std::fprintf(stderr, "wb agent: %s\n", msg.c_str());
    return 1;
}

bool toInt(const std::string& s, long long& v) {
    char* end = nullptr;
    v = std::strtoll(s.c_str(), &end, 10);
    return !s.empty() && end && *end == '\0';
}

}  // namespace

int runAgentCommand(int argc, char** argv) {
    static const std::map<std::string, std::string> kAlias = {{"-m", "model"}, {"-t", "threads"}};
    static const char* kFlags[] = {"json", "help", "execute"};
    static const char* kValues[] = {"model",   "url",       "model-name", "api-key",     "task",    "screens",
                                    "out",     "max-steps", "max-tokens", "system-file", "date",    "on-parse-error",
                                    "threads", "precision", "device",     "max-pixels",  "confirm", "apps", "kv-cache-dtype"};
    std::map<std::string, std::string> opt;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        std::string key;
        if (kAlias.count(a)) {
            key = kAlias.at(a);
        } else if (a.rfind("--", 0) == 0) {
            key.assign(a.begin() + 2, a.end());
        } else {
            return usageError("unexpected argument \"" + a + "\"");
        }
        if (key == "adb") {  // its serial is optional
            opt["adb"] = (i + 1 < argc && argv[i + 1][0] != '-') ? argv[++i] : "";
            continue;
        }
        bool flag = false, value = false;
        for (const char* f : kFlags) flag |= key == f;
        for (const char* v : kValues) value |= key == v;
        if (flag) {
            opt.emplace(key, "1");  // emplace, not operator=: GCC 12 warns falsely on that (-Wrestrict)
        } else if (value) {
            if (i + 1 >= argc) return usageError("--" + key + " needs a value");
            opt[key] = argv[++i];
        } else {
            return usageError("unknown option \"" + a + "\"");
        }
    }
    if (opt.count("help")) {
        std::fputs(kAgentUsage, stdout);
        return 0;
    }
    if (opt.count("model") == opt.count("url")) return usageError("give either -m MODEL or --url URL");
    for (const char* k : {"task", "out"})
        if (!opt.count(k)) return usageError(std::string("--") + k + " is required");
    if (opt.count("screens") == opt.count("adb")) return usageError("give either --screens DIR or --adb [SERIAL]");
    if (opt.count("execute") && !opt.count("adb")) return usageError("--execute needs --adb");
    const std::string confirm = opt.count("confirm") ? opt["confirm"] : "ask";
    if (confirm != "ask" && confirm != "yes" && confirm != "no") return usageError("--confirm is ask, yes or no");

    AgentOptions ao;
    ao.task = opt["task"];
    ao.date = opt.count("date") ? opt["date"] : "";
    long long n = 0;
    if (opt.count("max-steps")) {
        if (!toInt(opt["max-steps"], n) || n < 1) return usageError("bad --max-steps");
        ao.maxSteps = int(n);
    }
    if (opt.count("max-tokens")) {
        if (!toInt(opt["max-tokens"], n) || n < 1) return usageError("bad --max-tokens");
        ao.maxTokens = n;
    }
    if (opt.count("on-parse-error")) {
        if (opt["on-parse-error"] == "stop")
            ao.onParseError = AgentParseErrorPolicy::Stop;
        else if (opt["on-parse-error"] == "continue")
            ao.onParseError = AgentParseErrorPolicy::Continue;
        else
            return usageError("--on-parse-error is stop or continue");
    }
    if (opt.count("system-file")) {
        std::ifstream in(opt["system-file"]);
        if (!in) return fail("cannot read " + opt["system-file"]);
        std::stringstream ss;
        ss << in.rdbuf();
        ao.systemPrompt = ss.str();
    }

    Result<std::unique_ptr<AgentScreenSource>> source = makeError("no source");
    if (opt.count("adb")) {
        AgentAdbOptions adb;
        adb.serial = opt["adb"];
        adb.execute = std::make_shared<std::atomic<bool>>(opt.count("execute") != 0);
        adb.cancel = &g_cancel;
        if (opt.count("apps")) {
            std::ifstream in(opt["apps"]);
            if (!in) return fail("cannot read " + opt["apps"]);
            adb.apps = defaultAgentApps();
            std::string line;
            for (int no = 1; std::getline(in, line); ++no) {
                auto trim = [](std::string t) {
                    const size_t a = t.find_first_not_of(" \t\r"), b = t.find_last_not_of(" \t\r");
                    return a == std::string::npos ? std::string() : t.substr(a, b - a + 1);
                };
                line = trim(line);
                if (line.empty() || line[0] == '#') continue;
                const size_t eq = line.find('=');
                if (eq == std::string::npos || trim(line.substr(0, eq)).empty() || trim(line.substr(eq + 1)).empty())
                    return fail(opt["apps"] + ":" + std::to_string(no) + ": expected NAME = PACKAGE");
                adb.apps[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
            }
        }
        source = makeAdbScreenSource(std::move(adb));
    } else {
        source = makeReplayScreenSource(opt["screens"]);
    }
    if (!source) return fail(source.error().message);
    // A decision on the terminal, a fixed answer, or a refusal when nobody can answer.
    ao.ask = [confirm](AgentAsk what, const AgentStep& pending) {
        const AgentAction& a = pending.parse.action;
        const bool takeOver = what == AgentAsk::TakeOver;
        if (confirm != "ask") {
            std::fprintf(stderr, "wb agent: %s \"%s\": --confirm %s\n", takeOver ? "take over" : "sensitive tap",
                         a.message.c_str(), confirm.c_str());
            return confirm == "yes";
        }
        if (!isatty(0)) {
            std::fprintf(stderr, "wb agent: %s \"%s\" needs a decision and stdin is not a terminal (--confirm yes|no)\n",
                         takeOver ? "take over" : "sensitive tap", a.message.c_str());
            return false;
        }
        if (takeOver)
            std::fprintf(stderr, "\nThe agent hands over: %s\nDo it on the phone, then press Enter to go on (q: stop): ",
                         a.message.empty() ? "(no message)" : a.message.c_str());
        else
            std::fprintf(stderr, "\nSensitive tap: %s\nTap it? [y/N] ", a.message.c_str());
        char buf[256];
        if (!std::fgets(buf, sizeof buf, stdin) || g_cancel) return false;
        const char c = buf[0];
        return takeOver ? (c != 'q' && c != 'Q') : (c == 'y' || c == 'Y');
    };

    std::unique_ptr<Engine> engine;
    std::unique_ptr<AgentChatTarget> target;
    if (opt.count("url")) {
        auto t = makeOpenAiAgentTarget(opt["url"], opt["model-name"], opt["api-key"]);
        if (!t) return fail(t.error().message);
        target = std::move(*t);
    } else {
        EngineOptions eo;
        eo.modelPath = opt["model"];
        auto p = parsePrecision(opt.count("precision") ? opt["precision"] : "native");
        if (!p) return usageError(p.error().message);
        eo.load.precision = *p;
        auto d = parseDeviceKind(opt.count("device") ? opt["device"] : "cpu");
        if (!d) return usageError(d.error().message);
        eo.load.device = *d;
        if (opt.count("threads")) {
            if (!toInt(opt["threads"], n) || n < 0) return usageError("bad --threads");
            eo.load.numThreads = int(n);
        }
        if (opt.count("max-pixels")) {
            if (!toInt(opt["max-pixels"], n) || n < 0) return usageError("bad --max-pixels");
            eo.maxImagePixels = n;
        }
        if (opt.count("kv-cache-dtype")) {
            auto t = parseKvCacheType(opt["kv-cache-dtype"]);
            if (!t) return usageError("--kv-cache-dtype: " + t.error().message);
            eo.kvCacheType = *t;
        }
        eo.maxNumSeqs = 1;
        // The model's deployment setting (vLLM --max-model-len 25480, ../shared/SEED.md): a whole episode of
        // screenshots fits, and the pool holds one sequence of that length (within kvMemoryFraction of memory).
        eo.maxModelLen = 25480;
        auto e = Engine::create(eo);
        if (!e) return fail(e.error().message);
        engine = std::move(*e);
        if (!engine->acceptsImages())
            return fail(eo.modelPath + " takes no images: the agent needs a vision model (GLM-4.1V layout)");
        target = makeEngineAgentTarget(*engine, "workbench engine: " + eo.modelPath);
    }

    // Ctrl-C stops after the request in flight, and the run folder is still written.
    // Without SA_RESTART: Ctrl-C also ends a question waiting on the terminal (its read fails, the answer is no).
    struct sigaction sa {};
    sa.sa_handler = [](int) {
        g_interrupted = 1;
        g_cancel = true;
    };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    ao.cancel = &g_cancel;
    const bool asJson = opt.count("json") != 0;
    AgentSession session(*target, **source, ao);
    AgentTraceWriter trace(opt["out"]);
    std::fprintf(stderr, "wb agent: %s; %s; run folder %s\n", session.targetName().c_str(),
                 session.sourceName().c_str(), opt["out"].c_str());
    std::string writeError;
    session.run([&](const AgentStep& s) {
        if (auto w = trace.write(session); !w && writeError.empty()) writeError = w.error().message;
        if (asJson) {
            std::printf("%s\n", agentStepJson(s).c_str());
            std::fflush(stdout);
            return;
        }
        const AgentReply& r = s.reply;
        std::fprintf(stderr, "step %d  %s\n", s.index, s.screen.name.c_str());
        if (!r.error.empty())
            std::fprintf(stderr, "  error: %s\n", r.error.c_str());
        else if (s.parse.ok())
            std::fprintf(stderr, "  action: %s%s%s\n", s.parse.action.line.c_str(),
                         s.parse.warning.empty() ? "" : "  (",
                         s.parse.warning.empty() ? "" : (s.parse.warning + ")").c_str());
        else
            std::fprintf(stderr, "  parse error: %s\n", s.parse.error.c_str());
        if (!s.executed.empty()) std::fprintf(stderr, "  executed: %s\n", s.executed.c_str());
        auto ms = [](double v) { return v < 0 ? std::string("n/a") : std::to_string(int64_t(v + 0.5)) + " ms"; };
        std::fprintf(stderr, "  first token %s, thinking ended %s, total %s; %lld prompt + %lld generated tokens\n",
                     ms(r.ttftMs).c_str(), ms(r.thinkEndMs).c_str(), ms(r.totalMs).c_str(), (long long)r.promptTokens,
                     (long long)r.completionTokens);
    });
    if (auto w = trace.write(session); !w && writeError.empty()) writeError = w.error().message;
    std::fprintf(stderr, "wb agent: %s after %zu step(s): %s\n", agentStopReasonName(session.stopReason()),
                 session.steps().size(), session.stopDetail().c_str());
    if (!writeError.empty()) return fail(writeError);
    switch (session.stopReason()) {
        case AgentStopReason::Finished:
        case AgentStopReason::MaxSteps:
        case AgentStopReason::ScreensExhausted:
        case AgentStopReason::Cancelled:
        case AgentStopReason::Declined:
            return 0;
        case AgentStopReason::ParseError:
            return 3;
        default:
            return 1;
    }
}

}  // namespace wb::cli
