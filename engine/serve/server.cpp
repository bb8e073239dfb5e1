#include "api/server.h"
#include "serve/multipart.h"
#include "serve/openai_protocol.h"
#include "api/units.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <functional>
#include <set>
#include <thread>

#include "api/chat_prompt.h"
#include "serve/http_server.h"
#include "serve/metrics.h"

using nlohmann::json;

namespace wb {

namespace {

const char* const kInternalErrorBody =
    R"({"error":{"message":"internal server error","type":"server_error","param":null,"code":"internal_error"}})";

// Events of one request, handed from the engine's loop thread to the HTTP worker that answers it.
struct Channel {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Event> events;
    bool finished = false;
    RequestId id = 0;
};

std::string randomHex(size_t n) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char* d = "0123456789abcdef";
    std::string s(n, '0');
    for (auto& c : s) c = d[rng() & 15];
    return s;
}

const char* finishReason(const Event& e) {
    if (e.reason == StopReason::Length) return "length";
    return "stop";
}

std::string sse(const json& j) { return "data: " + dumpJson(j) + "\n\n"; }


// Turns engine events into response text. Reasoning goes to `reasoning_content` when the client asked for it
// (return_reasoning); otherwise it is folded back into the content inside <think>…</think>, which is what
// vLLM and SGLang send when no reasoning parser is enabled, so a client that parses the tags itself (the phone
// agent does) still sees them.
struct Assembler {
    bool returnReasoning = false;
    bool inThink = false;
    std::string content, reasoning;

    // Appends one event's text; returns {content delta, reasoning delta}.
    std::pair<std::string, std::string> push(const Event& e) {
        std::string c, r;
        if (e.type == EventType::ReasoningDelta) {
            if (returnReasoning) {
                r = e.text;
            } else {
                if (!inThink) c = "<think>";
                inThink = true;
                c += e.text;
            }
        } else if (e.type == EventType::TextDelta) {
            if (inThink) c = "</think>";
            inThink = false;
            c += e.text;
        } else if (inThink) {  // finished inside the reasoning: close the tag
            c = "</think>";
            inThink = false;
        }
        content += c;
        reasoning += r;
        return {c, r};
    }
};

}  // namespace

namespace {

// Compares in time that depends on the expected key's length only, never on where the first difference is.
bool constantTimeEquals(std::string_view given, std::string_view expected) {
    volatile unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) {
        const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff = diff | (g ^ static_cast<unsigned char>(expected[i]));
    }
    return diff == 0;
}

// Decoded pixels of the images being prepared, summed over all requests: one request may not hold more than
// the budget either (it is refused outright rather than waiting for a budget it can never get).
class PixelBudget {
public:
    explicit PixelBudget(int64_t limit) : m_limit(limit) {}
    bool tryTake(int64_t n) {
        if (m_limit <= 0 || n <= 0) return true;
        int64_t cur = m_inUse.load();
        do {
            if (cur + n > m_limit) return false;
        } while (!m_inUse.compare_exchange_weak(cur, cur + n));
        return true;
    }
    void give(int64_t n) {
        if (m_limit > 0 && n > 0) m_inUse -= n;
    }
    int64_t inUse() const { return m_inUse.load(); }
    int64_t limit() const { return m_limit; }

private:
    int64_t m_limit;
    std::atomic<int64_t> m_inUse{0};
};

}  // namespace

struct OpenAiServer::Impl {
    Engine& engine;
    ServeOptions opt;
    std::string modelName;
    ServerMetrics metrics;
    PixelBudget pixels;
    int boundPort = -1;
    int64_t maxModelLen = 0;
    std::atomic<int> outstanding{0};
    std::mutex liveMutex;
    std::set<RequestId> live;
    std::time_t startedAt = std::time(nullptr);
    std::atomic<bool> draining{false};      // stop() was called: no new generation
    std::atomic<bool> shuttingDown{false};  // the drain time is over: live requests are being ended
    std::mutex stopMutex;
    std::condition_variable stopCv;
    bool stopRequested = false;
    bool running = false;
    std::mutex asrMutex;
    std::condition_variable asrCv;
    std::deque<std::function<void()>> asrJobs;
    std::set<std::shared_ptr<std::atomic<bool>>> asrLive;
    bool asrStop = false;
    std::thread asrWorker;
    std::unique_ptr<HttpServer> http;  // last: destroyed first, while the rest is still there

    Impl(Engine& e, ServeOptions o) : engine(e), opt(std::move(o)), pixels(opt.maxImagePixelsInFlight) {}
    ~Impl() {
        {
            std::lock_guard lock(asrMutex);
            asrStop = true;
            for (const auto& c : asrLive) c->store(true);
        }
        asrCv.notify_all();
        if (asrWorker.joinable()) asrWorker.join();
    }

    static void sendError(HttpResponder& res, const ApiError& e, const HttpResponder::Headers& extra = {}) {
        res.send(e.status, "application/json", apiErrorBody(e), extra);
    }
    static void sendJson(HttpResponder& res, const json& j) { res.send(200, "application/json", dumpJson(j)); }

    void handle(const HttpRequest& req, const std::shared_ptr<HttpResponder>& res);
    void handleGenerate(const HttpRequest& req, const std::shared_ptr<HttpResponder>& res, bool chat);
    void handleTranscription(const HttpRequest& req, const std::shared_ptr<HttpResponder>& res);
    // Transcriptions: one worker thread of their own (SpeechRecognizer runs one at a time anyway), started on
    // the first request; each queued or running one has a stop flag (client gone, shutdown).
    void enqueueTranscription(const std::shared_ptr<std::atomic<bool>>& cancel, std::function<void()> job);
    void answerTranscription(HttpResponder& res, const FormPart& file, const TranscribeOptions& to,
                             const std::string& format);
    void cancelLive() {
        {
            std::lock_guard lock(liveMutex);
            for (RequestId id : live) engine.cancel(id);
        }
        std::lock_guard lock(asrMutex);
        for (const auto& c : asrLive) c->store(true);
    }
    json usageJson(const Event& fin) const {
        return {{"prompt_tokens", fin.usage.promptTokens},
                {"completion_tokens", fin.usage.completionTokens},
                {"total_tokens", fin.usage.promptTokens + fin.usage.completionTokens},
                // OpenAI's field for prompt tokens served from the prefix cache.
                {"prompt_tokens_details", {{"cached_tokens", fin.usage.cachedPromptTokens}}}};
    }
};

Result<std::unique_ptr<OpenAiServer>> OpenAiServer::create(Engine& engine, ServeOptions options) {
    // Writes to a socket whose client went away must fail with EPIPE, not kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    if (options.maxBodyBytes == 0) return makeError("the body size limit must be positive");
    if (options.maxHeaderBytes < 1024) return makeError("the header size limit must be at least 1 KiB");
    if (options.maxHeaderCount < 8) return makeError("the header count limit must be at least 8");
    if (options.maxConnections < 1 || options.handlerThreads < 1 || options.listenBacklog < 1)
        return makeError("connection, thread and backlog limits must be positive");
    if (options.headerTimeoutSeconds < 1 || options.readTimeoutSeconds < 1 || options.keepAliveSeconds < 1 ||
        options.drainSeconds < 0)
        return makeError("timeouts must be positive");
    std::unique_ptr<OpenAiServer> s(new OpenAiServer());
    s->m = std::make_unique<Impl>(engine, std::move(options));
    Impl& m = *s->m;
    m.modelName = m.opt.servedModelName.empty() ? std::filesystem::path(engine.options().modelPath).stem().string()
                                                : m.opt.servedModelName;
    const int64_t ctx = engine.modelConfig().maxContext;
    m.maxModelLen = engine.options().maxModelLen > 0 ? std::min(engine.options().maxModelLen, ctx) : ctx;

    HttpLimits lim;
    lim.maxHeaderBytes = m.opt.maxHeaderBytes;
    lim.maxHeaderCount = m.opt.maxHeaderCount;
    lim.maxBodyBytes = m.opt.maxBodyBytes;
    lim.headerTimeoutMs = m.opt.headerTimeoutSeconds * 1000;
    lim.bodyTimeoutMs = m.opt.readTimeoutSeconds * 1000;
    lim.writeTimeoutMs = m.opt.readTimeoutSeconds * 1000;
    lim.keepAliveMs = m.opt.keepAliveSeconds * 1000;
    lim.maxConnections = m.opt.maxConnections;
    lim.listenBacklog = m.opt.listenBacklog;
    lim.handlerThreads = m.opt.handlerThreads;
    Impl* impl = &m;
    m.http = std::make_unique<HttpServer>(
        lim, [impl](const HttpRequest& req, std::shared_ptr<HttpResponder> res) { impl->handle(req, res); },
        [](int status, const std::string& message, const std::string& code) {
            return apiErrorBody({status, message, status >= 500 ? "server_error" : "invalid_request_error", "", code});
        },
        [impl](const char* reason) { impl->metrics.countRefused(reason); },
        [impl](const std::string& path, int status) {
            static const std::set<std::string> known = {"/v1/models", "/v1/chat/completions", "/v1/completions",
                                                        "/health", "/metrics"};
            impl->metrics.countRequest(known.count(path) ? path : "other", status);
        });
    m.metrics.setLimits({{"max_body_bytes", double(m.opt.maxBodyBytes)},
                         {"max_header_bytes", double(m.opt.maxHeaderBytes)},
                         {"max_header_count", double(m.opt.maxHeaderCount)},
                         {"max_connections", double(m.opt.maxConnections)},
                         {"listen_backlog", double(m.opt.listenBacklog)},
                         {"header_timeout_seconds", double(m.opt.headerTimeoutSeconds)},
                         {"read_timeout_seconds", double(m.opt.readTimeoutSeconds)},
                         {"keep_alive_seconds", double(m.opt.keepAliveSeconds)},
                         {"drain_seconds", double(m.opt.drainSeconds)},
                         {"max_queued", double(m.opt.maxQueued)},
                         {"max_image_pixels_in_flight", double(m.opt.maxImagePixelsInFlight)}});
    m.metrics.setLiveGauges([impl] {
        return std::map<std::string, double>{{"http_connections", double(impl->http->connections())},
                                             {"image_pixels_in_flight", double(impl->pixels.inUse())}};
    });
    return s;
}

OpenAiServer::~OpenAiServer() {
    if (!m) return;
    stop();
    {
        // run() may be draining in another thread: it owns the HTTP server until it returns.
        std::unique_lock lock(m->stopMutex);
        m->stopCv.wait(lock, [&] { return !m->running; });
    }
    // Sinks point into this object: nothing may still be live in the engine when it goes.
    m->cancelLive();
    while (m->outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    m->http.reset();
}

Result<int> OpenAiServer::bind() {
    auto port = m->http->bind(m->opt.host, m->opt.port);
    if (!port) return port.error();
    m->boundPort = *port;
    return *port;
}

Result<void> OpenAiServer::run() {
    if (m->boundPort <= 0) return makeError("bind() first");
    {
        std::lock_guard lock(m->stopMutex);
        if (m->stopRequested) return {};
        m->running = true;
    }
    m->http->start();
    {
        std::unique_lock lock(m->stopMutex);
        m->stopCv.wait(lock, [&] { return m->stopRequested; });
    }
    // Drain: no new connections or generations; running requests get up to drainSeconds.
    m->draining = true;
    m->http->stopAccepting();
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::seconds(m->opt.drainSeconds);
    while (Clock::now() < deadline && (m->outstanding.load() > 0 || m->http->busyConnections() > 0))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // What is left ends now: streams get an error event and [DONE], waiting requests a 503.
    m->shuttingDown = true;
    const auto hard = Clock::now() + std::chrono::seconds(5);
    while (m->outstanding.load() > 0 && Clock::now() < hard) {
        m->cancelLive();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // Let those last bytes reach the clients.
    const auto flush = Clock::now() + std::chrono::seconds(2);
    while (m->http->busyConnections() > 0 && Clock::now() < flush)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    m->http->stop();
    {
        std::lock_guard lock(m->stopMutex);
        m->running = false;
    }
    m->stopCv.notify_all();
    return {};
}

void OpenAiServer::stop() {
    {
        std::lock_guard lock(m->stopMutex);
        m->stopRequested = true;
    }
    m->stopCv.notify_all();
}

int OpenAiServer::port() const { return m->boundPort; }
const std::string& OpenAiServer::modelName() const { return m->modelName; }

std::string OpenAiServer::startupSummary() const {
    const StatsSnapshot s = m->engine.stats();
    const EngineOptions& eo = m->engine.options();
    std::string p = precisionName(eo.load.precision);
    if (eo.load.precision == Precision::Native) p += " (checkpoint dtypes)";
    char buf[1536];
    std::snprintf(buf, sizeof buf,
                  "model '%s' loaded from %s with %s precision\n"
                  "device: %s; weights %s\n"
                  "KV cache: %lld blocks x %lld tokens = %lld tokens, %s (%lld bytes, %s); max model length %lld, "
                  "max %d sequences\n"
                  "limits: body %s, header %s / %zu lines, %zu images / %zu audio per request, %lld image pixels "
                  "in flight, %d queued, %d connections (backlog %d); timeouts: header %d s, body %d s, keep-alive "
                  "%d s, drain %d s%s\n",
                  m->modelName.c_str(), eo.modelPath.c_str(), p.c_str(), s.device.c_str(),
                  humanBytes(double(s.weightBytes)).c_str(), (long long)s.kvBlocksTotal, (long long)s.kvBlockSize,
                  (long long)(s.kvBlocksTotal * s.kvBlockSize), humanBytes(double(s.kvCacheBytes)).c_str(),
                  (long long)s.kvCacheBytes, s.kvCacheType.c_str(), (long long)m->maxModelLen, eo.maxNumSeqs,
                  humanBytes(double(m->opt.maxBodyBytes)).c_str(), humanBytes(double(m->opt.maxHeaderBytes)).c_str(),
                  m->opt.maxHeaderCount, m->opt.media.maxImages, m->opt.media.maxAudios,
                  (long long)m->opt.maxImagePixelsInFlight, m->opt.maxQueued, m->opt.maxConnections,
                  m->opt.listenBacklog, m->opt.headerTimeoutSeconds, m->opt.readTimeoutSeconds,
                  m->opt.keepAliveSeconds, m->opt.drainSeconds,
                  m->opt.apiKey.empty() ? "" : "; API key required");
    std::string out = buf;
    if (m->opt.apiKey.empty() && m->opt.host != "127.0.0.1" && m->opt.host != "localhost" && m->opt.host != "::1")
        out += "WARNING: listening on " + m->opt.host +
               " without an API key: anyone who can reach this address can use the model (--api-key)\n";
    return out;
}

void OpenAiServer::Impl::handle(const HttpRequest& req, const std::shared_ptr<HttpResponder>& res) {
    if (opt.logRequests)
        std::fprintf(stderr, "%s %s %s\n", req.remote.c_str(), req.method.c_str(), sanitizeUtf8(req.target).c_str());
    if (!opt.apiKey.empty() && req.path.rfind("/v1/", 0) == 0) {
        const std::string auth = req.header("Authorization");
        const std::string_view prefix = "Bearer ";
        const bool ok = auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
                        constantTimeEquals(std::string_view(auth).substr(prefix.size()), opt.apiKey);
        if (!ok)
            return sendError(*res, {401, "invalid or missing API key (send Authorization: Bearer <key>)",
                                    "invalid_request_error", "", "invalid_api_key"});
    }
    const bool get = req.method == "GET" || req.method == "HEAD";  // HEAD: the layer drops the body
    if (req.path == "/health" && get) {
        // A faulted engine answers 503 with the reason, so that a supervisor sees it and can restart or reload.
        const EngineState state = engine.state();
        if (state == EngineState::Serving) return res->send(200, "application/json", "{\"status\":\"ok\"}");
        json j{{"status", engineStateName(state)}};
        if (state == EngineState::Faulted) j["reason"] = engine.faultReason();
        return res->send(503, "application/json", j.dump());
    }
    if (req.path == "/metrics" && get)
        return res->send(200, "text/plain; version=0.0.4; charset=utf-8", metrics.render(engine.stats(), modelName));
    if (req.path == "/v1/models" && get) {
        // The model's name only: where its files lie on this machine is none of a client's business.
        json j{{"object", "list"},
               {"data",
                json::array({{{"id", modelName},
                              {"object", "model"},
                              {"created", int64_t(startedAt)},
                              {"owned_by", "workbench"},
                              {"root", modelName},
                              {"max_model_len", maxModelLen}}})}};
        return sendJson(*res, j);
    }
    if (req.path == "/v1/chat/completions" && req.method == "POST") return handleGenerate(req, res, true);
    if (req.path == "/v1/completions" && req.method == "POST") return handleGenerate(req, res, false);
    if (req.path == "/v1/audio/transcriptions" && req.method == "POST") return handleTranscription(req, res);
    ApiError e{404, "no route for " + req.method + " " + req.path, "invalid_request_error", "", "not_found"};
    static const std::set<std::string> known = {"/v1/models", "/v1/chat/completions", "/v1/completions", "/health",
                                                "/metrics", "/v1/audio/transcriptions"};
    if (known.count(req.path)) {
        e.status = 405;
        e.message = "method " + req.method + " is not allowed on " + req.path;
        e.code = "method_not_allowed";
    }
    sendError(*res, e);
}

void OpenAiServer::Impl::handleGenerate(const HttpRequest& req, const std::shared_ptr<HttpResponder>& res,
                                        bool chat) {
    if (draining)
        return sendError(*res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
    json body;
    try {
        body = json::parse(req.body);
    } catch (const json::exception& ex) {
        return sendError(*res, {400, std::string("the request body is not valid JSON: ") + ex.what(),
                                "invalid_request_error", "", "invalid_json"});
    }
    if (body.is_object() && body.contains("model") && body["model"].is_string() &&
        body["model"].get<std::string>() != modelName)
        return sendError(*res, {404, "The model `" + body["model"].get<std::string>() + "` does not exist (this "
                                     "server serves `" + modelName + "`).",
                                "invalid_request_error", "model", "model_not_found"});

    ApiRequest ar;
    ar.model = modelName;
    ModelCaps caps;
    caps.images = engine.acceptsImages();
    if (opt.asr)
        caps.transcribe = [this](std::string_view bytes) -> Result<std::string> {
            auto audio = decodeSpeechAudio({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                                           "input_audio", opt.maxAudioSeconds);
            if (!audio) return audio.error();
            auto t = opt.asr->transcribe(*audio, {}, opt.vad.get());
            if (!t) return t.error();
            return t->text;
        };
    if (auto e = chat ? parseChatRequest(body, opt.media, caps, ar) : parseCompletionRequest(body, ar))
        return sendError(*res, *e);
    ar.model = modelName;
    body = json();  // the images' base64 is not needed any more

    // Tokenize here rather than in the engine, so a prompt that cannot fit is a 400 before anything streams.
    const Tokenizer& tok = engine.tokenizer();
    std::vector<int32_t> ids;
    std::vector<std::string> stops = ar.stop;
    if (chat) {
        // Decoding images costs memory in proportion to their pixels: all requests together stay within the
        // budget, and a request beyond what is free now is told when to come back.
        int64_t px = 0;
        for (const ChatMessage& msg : ar.messages)
            for (const ContentPart& part : msg.parts)
                if (part.kind == ContentPart::Kind::Image && part.image)
                    px += int64_t(imagePixels(std::string_view(reinterpret_cast<const char*>(part.image->data()),
                                                               part.image->size())));
        if (pixels.limit() > 0 && px > pixels.limit())
            return sendError(*res, {400, "the request's images have " + std::to_string(px) +
                                             " pixels together; the server decodes at most " +
                                             std::to_string(pixels.limit()) + " at a time",
                                    "invalid_request_error", "messages", "images_too_large"});
        if (!pixels.tryTake(px)) {
            metrics.countRefused("image_budget");
            return sendError(*res, {503, "the server is decoding other images; retry shortly", "server_error", "",
                                    "image_budget_exhausted"},
                             {{"Retry-After", "1"}});
        }
        // The engine's own preparation (template, images decoded and sized): the count is the one it will run.
        Request probe;
        probe.messages = ar.messages;
        probe.enableThinking = ar.enableThinking;
        auto p = engine.promptTokens(probe);
        pixels.give(px);
        if (!p) return sendError(*res, {400, p.error().message, "invalid_request_error", "messages", ""});
        ids = std::move(*p);
    } else if (!ar.promptTokens.empty()) {
        ids = ar.promptTokens;
        const int64_t vocab = engine.modelConfig().vocabSize;
        for (int32_t t : ids)
            if (t < 0 || t >= vocab)
                return sendError(*res, {400, "token id " + std::to_string(t) + " is outside the vocabulary of " +
                                                 std::to_string(vocab),
                                        "invalid_request_error", "prompt", ""});
    } else {
        ids = tok.encode(ar.prompt, tok.addBosByDefault(), SpecialTokens::Plain);
    }
    const int64_t promptLen = int64_t(ids.size());
    if (promptLen >= maxModelLen)
        return sendError(*res, {400, "the prompt has " + std::to_string(promptLen) +
                                         " tokens; this model's maximum context length is " +
                                         std::to_string(maxModelLen) + " tokens",
                                "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded"});
    const int64_t maxTokens = ar.maxTokens.value_or(maxModelLen - promptLen);
    if (promptLen + maxTokens > maxModelLen)
        return sendError(*res, {400, "this model's maximum context length is " + std::to_string(maxModelLen) +
                                         " tokens; the request has " + std::to_string(promptLen) +
                                         " prompt tokens and asks for " + std::to_string(maxTokens) +
                                         " more (max_tokens)",
                                "invalid_request_error", "max_tokens", "context_length_exceeded"});
    const StatsSnapshot st = engine.stats();
    if (st.kvBlockSize > 0 && (promptLen + maxTokens + st.kvBlockSize - 1) / st.kvBlockSize > st.kvBlocksTotal)
        return sendError(*res, {400, "the request needs " + std::to_string(promptLen + maxTokens) +
                                         " tokens of KV cache but the whole cache holds " +
                                         std::to_string(st.kvBlocksTotal * st.kvBlockSize),
                                "invalid_request_error", "max_tokens", "context_length_exceeded"});
    if (outstanding.load() >= engine.options().maxNumSeqs + opt.maxQueued) {
        metrics.countRefused("queue_full");
        return sendError(*res, {429, "the server's queue is full (" + std::to_string(opt.maxQueued) +
                                         " waiting beyond the running batch); retry later",
                                "rate_limit_error", "", "queue_full"},
                         {{"Retry-After", "1"}});
    }
    if (res->clientGone()) return;  // nobody to answer: do not start the work

    Request r;
    // Chat requests go in as messages so that the engine prepares their images (and the transcript's stop
    // string) itself; the ids counted above are the ones it will build.
    if (chat)
        r.messages = std::move(ar.messages);
    else
        r.promptTokens = std::move(ids);
    r.sampling = ar.sampling;
    r.maxTokens = maxTokens;
    r.stop = std::move(stops);
    r.ignoreEos = ar.ignoreEos;
    r.enableThinking = ar.enableThinking;

    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + randomHex(24);
    const int64_t created = int64_t(std::time(nullptr));
    const std::string object = chat ? "chat.completion" : "text_completion";
    const std::string chunkObject = chat ? "chat.completion.chunk" : "text_completion";
    const bool stream = ar.stream;
    const bool includeUsage = ar.includeUsage;

    // The answer's state lives with the sink; the engine calls it from its loop thread, one event at a time.
    struct State {
        Assembler as;
        Event fin;
    };
    auto st2 = std::make_shared<State>();
    st2->as.returnReasoning = ar.returnReasoning && (chat || !stream);
    const bool returnReasoning = ar.returnReasoning;
    auto chunk = [=, this](json delta, json finish) {
        json c{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
        if (chat)
            c["delta"] = std::move(delta);
        else
            c["text"] = delta.value("content", "");
        json j{{"id", id}, {"object", chunkObject}, {"created", created}, {"model", modelName},
               {"choices", json::array({c})}};
        if (includeUsage) j["usage"] = nullptr;
        return sse(j);
    };

    if (stream) {
        // The role chunk goes out at once: the client sees the stream open before the prefill ends.
        res->beginStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}},
                         ": keep-alive\n\n");
        res->write(chat ? chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr) : std::string(": ok\n\n"));
    }

    auto sink = [=, this](const Event& e) {
        const bool last = e.type == EventType::Finished || e.type == EventType::Error;
        if (last) metrics.recordFinished(e);
        try {
            const bool cut = e.type == EventType::Finished && e.reason == StopReason::Cancelled && shuttingDown;
            if (stream) {
                std::string out;
                if (e.type == EventType::Error || cut) {
                    ApiError err = cut ? ApiError{503, "the server is shutting down; the answer was cut",
                                                  "server_error", "", "shutting_down"}
                                       : ApiError{500, "generation failed: " + e.text, "server_error", "", ""};
                    out = "data: " + apiErrorBody(err) + "\n\ndata: [DONE]\n\n";
                } else {
                    auto [c, rr] = st2->as.push(e);
                    if (!rr.empty()) out += chunk(json{{"reasoning_content", rr}}, nullptr);
                    if (!c.empty()) out += chunk(json{{"content", c}}, nullptr);
                    if (e.type == EventType::Finished) {
                        out += chunk(json::object(), finishReason(e));
                        if (includeUsage) {
                            json u{{"id", id},         {"object", chunkObject},     {"created", created},
                                   {"model", modelName}, {"choices", json::array()}, {"usage", usageJson(e)}};
                            out += sse(u);
                        }
                        out += "data: [DONE]\n\n";
                    }
                }
                if (!out.empty()) res->write(std::move(out));
                if (last) res->end();
            } else {
                st2->as.push(e);
                if (last) {
                    if (e.type == EventType::Error) {
                        sendError(*res, {500, "generation failed: " + e.text, "server_error", "", ""});
                    } else if (cut) {
                        sendError(*res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
                    } else {
                        json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finishReason(e)}};
                        if (chat) {
                            json msg{{"role", "assistant"}, {"content", st2->as.content}};
                            if (returnReasoning)
                                msg["reasoning_content"] =
                                    st2->as.reasoning.empty() ? json(nullptr) : json(st2->as.reasoning);
                            choice["message"] = msg;
                        } else {
                            choice["text"] = st2->as.content;
                        }
                        json j{{"id", id},           {"object", object},
                               {"created", created}, {"model", modelName},
                               {"choices", json::array({choice})}, {"usage", usageJson(e)}};
                        res->send(200, "application/json", dumpJson(j));
                    }
                }
            }
        } catch (...) {
            // Never into the engine's loop: the client gets a cut answer, the request still ends below.
            if (stream)
                res->end();
            else
                sendError(*res, {500, "internal server error", "server_error", "", "internal_error"});
        }
        if (last) {
            {
                std::lock_guard l(liveMutex);
                live.erase(e.id);
            }
            --outstanding;  // last: after this the server may be destroyed
        }
    };

    ++outstanding;
    RequestId rid = 0;
    {
        // Held across submit so the sink's erase cannot run before the insert.
        std::lock_guard lock(liveMutex);
        rid = engine.submit(std::move(r), sink);
        live.insert(rid);
    }
    // A client that goes away (streaming or not) stops the generation and frees its KV blocks at once.
    res->onClientGone([this, rid] { engine.cancel(rid); });
}

namespace {

bool parseInt(const std::string& text, int64_t lo, int64_t hi, int64_t& out) {
    if (text.empty()) return false;
    size_t used = 0;
    try {
        out = std::stoll(text, &used);
    } catch (...) {
        return false;
    }
    return used == text.size() && out >= lo && out <= hi;
}

}  // namespace

Result<void> applyServeLimitOptions(const std::map<std::string, std::string>& opts, ServeOptions& o) {
    struct Opt {
        const char* name;
        int64_t lo, hi;
        std::function<void(int64_t)> set;
    };
    const std::vector<Opt> table = {
        {"max-header-kb", 1, 1024, [&](int64_t v) { o.maxHeaderBytes = size_t(v) << 10; }},
        {"max-header-count", 8, 10000, [&](int64_t v) { o.maxHeaderCount = size_t(v); }},
        {"max-connections", 1, 100000, [&](int64_t v) { o.maxConnections = int(v); }},
        {"listen-backlog", 1, 65535, [&](int64_t v) { o.listenBacklog = int(v); }},
        {"handler-threads", 1, 256, [&](int64_t v) { o.handlerThreads = int(v); }},
        {"header-timeout", 1, 3600, [&](int64_t v) { o.headerTimeoutSeconds = int(v); }},
        {"read-timeout", 1, 3600, [&](int64_t v) { o.readTimeoutSeconds = int(v); }},
        {"keep-alive", 1, 3600, [&](int64_t v) { o.keepAliveSeconds = int(v); }},
        {"drain-timeout", 0, 3600, [&](int64_t v) { o.drainSeconds = int(v); }},
        {"max-image-mpix-in-flight", 0, 100000, [&](int64_t v) { o.maxImagePixelsInFlight = v * 1'000'000; }},
    };
    for (const Opt& t : table) {
        auto it = opts.find(t.name);
        if (it == opts.end()) continue;
        int64_t v = 0;
        if (!parseInt(it->second, t.lo, t.hi, v))
            return makeError(std::string("--") + t.name + " must be an integer from " + std::to_string(t.lo) +
                             " to " + std::to_string(t.hi) + " (got '" + it->second + "')");
        t.set(v);
    }
    return {};
}

const char* serveLimitOptionsHelp() {
    return "  --max-header-kb N       request line + headers limit in KiB (default 16; beyond: 431)\n"
           "  --max-header-count N    header lines per request (default 100; beyond: 431)\n"
           "  --max-connections N     open connections (default 512; beyond: 503 and close)\n"
           "  --listen-backlog N      pending connections the kernel queues (default 1024)\n"
           "  --handler-threads N     threads that parse requests and decode images (default 4)\n"
           "  --header-timeout S      seconds to send a request's headers (default 10)\n"
           "  --read-timeout S        seconds to send its body; also one stalled write (default 30)\n"
           "  --keep-alive S          idle seconds between requests on a connection (default 10)\n"
           "  --drain-timeout S       on SIGTERM/SIGINT: seconds running requests may finish before streams\n"
           "                          are ended with an error event and [DONE] (default 30)\n"
           "  --max-image-mpix-in-flight N  megapixels of images decoded at once, all requests together\n"
           "                          (default 100; beyond: 503 + Retry-After; 0: no limit)\n"
           "  (bodies: chunked bodies count against --max-body-mb; compressed bodies are refused with 415)\n";
}

}  // namespace wb

namespace wb {

// OpenAI's POST /v1/audio/transcriptions: multipart/form-data with "file" (WAV, FLAC, OGG Vorbis or MP3) and
// "model"; optional "language", "response_format" (json, text, verbose_json), "temperature" (0, the default:
// beam search with the fallback from 0.0; T in (0, 1]: sampling from T, the fallback climbing by 0.2) and "prompt"
// (accepted, not used); "seed" (not OpenAI's) seeds the sampling. The handler only reads the form: the audio is
// decoded and transcribed on the transcription worker, which answers (a client that goes away cancels it).
void OpenAiServer::Impl::handleTranscription(const HttpRequest& req, const std::shared_ptr<HttpResponder>& res) {
    if (!opt.asr)
        return sendError(*res, {404, "this server has no speech model (start it with wb serve --asr-model PATH)",
                                "invalid_request_error", "model", "model_not_found"});
    if (draining)
        return sendError(*res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
    auto form = parseMultipartForm(req.header("Content-Type"), req.body);
    if (!form) return sendError(*res, {400, form.error().message, "invalid_request_error", "", "invalid_multipart"});
    const FormPart* file = nullptr;
    std::string model, language, format = "json", temperature, seed;
    for (const auto& p : *form) {
        if (p.name == "file") file = &p;
        else if (p.name == "model") model = p.data;
        else if (p.name == "language") language = p.data;
        else if (p.name == "response_format") format = p.data;
        else if (p.name == "temperature") temperature = p.data;
        else if (p.name == "seed") seed = p.data;
    }
    if (!file) return sendError(*res, {400, "the form has no 'file' part", "invalid_request_error", "file", ""});
    if (model.empty()) return sendError(*res, {400, "the form has no 'model' part", "invalid_request_error", "model", ""});
    if (format != "json" && format != "text" && format != "verbose_json")
        return sendError(*res, {400, "response_format '" + format + "' is not supported (json, text, verbose_json)",
                                "invalid_request_error", "response_format", ""});
    TranscribeOptions to;
    to.language = language;
    if (!temperature.empty()) {
        char* end = nullptr;
        const float v = std::strtof(temperature.c_str(), &end);
        if (end == temperature.c_str() || *end || !(v >= 0.0f && v <= 1.0f))
            return sendError(*res, {400, "temperature must be a number from 0 to 1", "invalid_request_error",
                                    "temperature", ""});
        to.temperature = v;
    }
    if (!seed.empty()) {
        char* end = nullptr;
        to.seed = std::strtoull(seed.c_str(), &end, 10);
        if (end == seed.c_str() || *end || seed[0] == '-')
            return sendError(*res, {400, "seed must be a non-negative integer", "invalid_request_error", "seed", ""});
    }
    // Decoding and transcribing run on the transcription worker, not here: a long file must not hold one of the
    // handler threads (as a chat request's generation runs on the engine's thread). The form's bytes move along.
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    res->onClientGone([cancel] { cancel->store(true); });
    to.cancel = cancel.get();
    auto parts = std::make_shared<std::vector<FormPart>>(std::move(*form));
    const FormPart* filePart = nullptr;
    for (const auto& p : *parts)
        if (p.name == "file") filePart = &p;
    enqueueTranscription(cancel, [this, res, parts, filePart, to, format] {
        answerTranscription(*res, *filePart, to, format);
    });
}

void OpenAiServer::Impl::enqueueTranscription(const std::shared_ptr<std::atomic<bool>>& cancel,
                                              std::function<void()> job) {
    std::unique_lock lock(asrMutex);
    ++outstanding;  // run() and the destructor wait for it; cancelLive() stops it
    asrLive.insert(cancel);
    asrJobs.push_back([this, cancel, job = std::move(job)] {
        job();
        {
            std::lock_guard l(asrMutex);
            asrLive.erase(cancel);
        }
        --outstanding;  // last: after this the server may be destroyed
    });
    if (!asrWorker.joinable())
        asrWorker = std::thread([this] {
            std::unique_lock l(asrMutex);
            for (;;) {
                asrCv.wait(l, [&] { return asrStop || !asrJobs.empty(); });
                if (asrJobs.empty()) return;  // asked to stop, nothing left
                auto next = std::move(asrJobs.front());
                asrJobs.pop_front();
                l.unlock();
                next();
                l.lock();
            }
        });
    lock.unlock();
    asrCv.notify_one();
}

void OpenAiServer::Impl::answerTranscription(HttpResponder& res, const FormPart& file, const TranscribeOptions& to,
                                             const std::string& format) {
    if (to.cancel && to.cancel->load())
        return sendError(res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
    auto audio = decodeSpeechAudio({reinterpret_cast<const uint8_t*>(file.data.data()), file.data.size()},
                                   file.filename.empty() ? "file" : sanitizeUtf8(file.filename), opt.maxAudioSeconds);
    if (!audio) return sendError(res, {400, audio.error().message, "invalid_request_error", "file", "invalid_audio"});
    auto t = opt.asr->transcribe(*audio, to, opt.vad.get());
    if (!t && to.cancel && to.cancel->load())
        return sendError(res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
    if (!t) return sendError(res, {400, t.error().message, "invalid_request_error", "language", ""});
    if (format == "text") return res.send(200, "text/plain; charset=utf-8", t->text + "\n");
    json j{{"text", t->text}};
    if (format == "verbose_json") {
        j["task"] = "transcribe";
        j["language"] = t->language;
        j["duration"] = t->durationSec;
        json segs = json::array();
        for (size_t i = 0; i < t->segments.size(); ++i) {
            const auto& s = t->segments[i];
            segs.push_back({{"id", int(i)}, {"seek", 0}, {"start", s.startSec}, {"end", s.endSec}, {"text", s.text},
                            {"tokens", json::array()}, {"temperature", s.temperature}, {"avg_logprob", s.avgLogprob},
                            {"compression_ratio", s.compressionRatio}, {"no_speech_prob", s.noSpeechProb}});
        }
        j["segments"] = segs;
    }
    sendJson(res, j);
}

}  // namespace wb
