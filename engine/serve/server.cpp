#include "serve/server.h"
#include "api/units.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>

#include "api/chat_prompt.h"
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

struct OpenAiServer::Impl {
    Engine& engine;
    ServeOptions opt;
    std::string modelName;
    httplib::Server http;
    ServerMetrics metrics;
    int boundPort = -1;
    int64_t maxModelLen = 0;
    std::atomic<int> outstanding{0};
    std::mutex liveMutex;
    std::set<RequestId> live;
    std::time_t startedAt = std::time(nullptr);

    Impl(Engine& e, ServeOptions o) : engine(e), opt(std::move(o)) {}

    static void sendError(httplib::Response& res, const ApiError& e) {
        res.status = e.status;
        res.set_content(apiErrorBody(e), "application/json");
    }

    void routes();
    void handleGenerate(const httplib::Request& req, httplib::Response& res, bool chat);
    json usageJson(const Event& fin) const {
        return {{"prompt_tokens", fin.usage.promptTokens},
                {"completion_tokens", fin.usage.completionTokens},
                {"total_tokens", fin.usage.promptTokens + fin.usage.completionTokens},
                // OpenAI's field for prompt tokens served from the prefix cache.
                {"prompt_tokens_details", {{"cached_tokens", fin.usage.cachedPromptTokens}}}};
    }
};

Result<std::unique_ptr<OpenAiServer>> OpenAiServer::create(Engine& engine, ServeOptions options) {
    std::signal(SIGPIPE, SIG_IGN);
    if (options.maxBodyBytes == 0) return makeError("the body size limit must be positive");
    if (options.workerThreads < 2) options.workerThreads = 2;
    std::unique_ptr<OpenAiServer> s(new OpenAiServer());
    s->m = std::make_unique<Impl>(engine, std::move(options));
    Impl& m = *s->m;
    m.modelName = m.opt.servedModelName.empty() ? std::filesystem::path(engine.options().modelPath).stem().string()
                                                : m.opt.servedModelName;
    const int64_t ctx = engine.modelConfig().maxContext;
    m.maxModelLen = engine.options().maxModelLen > 0 ? std::min(engine.options().maxModelLen, ctx) : ctx;
    m.routes();
    return s;
}

OpenAiServer::~OpenAiServer() {
    if (!m) return;
    stop();
    // Sinks point into this object: nothing may still be live in the engine when it goes.
    {
        std::lock_guard lock(m->liveMutex);
        for (RequestId id : m->live) m->engine.cancel(id);
    }
    while (m->outstanding.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

Result<int> OpenAiServer::bind() {
    const int port = m->opt.port == 0 ? m->http.bind_to_any_port(m->opt.host)
                                      : (m->http.bind_to_port(m->opt.host, m->opt.port) ? m->opt.port : -1);
    if (port <= 0)
        return makeError("cannot listen on " + m->opt.host + ":" + std::to_string(m->opt.port) +
                         " (in use, or not an address of this machine)");
    m->boundPort = port;
    return port;
}

Result<void> OpenAiServer::run() {
    if (m->boundPort <= 0) return makeError("bind() first");
    if (!m->http.listen_after_bind()) return makeError("the HTTP server stopped with an error");
    return {};
}

void OpenAiServer::stop() { m->http.stop(); }
int OpenAiServer::port() const { return m->boundPort; }
const std::string& OpenAiServer::modelName() const { return m->modelName; }

std::string OpenAiServer::startupSummary() const {
    const StatsSnapshot s = m->engine.stats();
    const EngineOptions& eo = m->engine.options();
    std::string p = precisionName(eo.load.precision);
    if (eo.load.precision == Precision::Native) p += " (checkpoint dtypes)";
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  "model '%s' loaded from %s with %s precision\n"
                  "device: %s; weights %s\n"
                  "KV cache: %lld blocks x %lld tokens = %lld tokens, %s (%lld bytes); max model length %lld, "
                  "max %d sequences\n"
                  "limits: body %s, %zu images / %zu audio per request, %d queued, %d connections%s\n",
                  m->modelName.c_str(), eo.modelPath.c_str(), p.c_str(), s.device.c_str(),
                  humanBytes(double(s.weightBytes)).c_str(), (long long)s.kvBlocksTotal, (long long)s.kvBlockSize,
                  (long long)(s.kvBlocksTotal * s.kvBlockSize), humanBytes(double(s.kvCacheBytes)).c_str(),
                  (long long)s.kvCacheBytes, (long long)m->maxModelLen, eo.maxNumSeqs,
                  humanBytes(double(m->opt.maxBodyBytes)).c_str(), m->opt.media.maxImages, m->opt.media.maxAudios,
                  m->opt.maxQueued, m->opt.workerThreads, m->opt.apiKey.empty() ? "" : "; API key required");
    return buf;
}

void OpenAiServer::Impl::routes() {
    const int threads = opt.workerThreads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    http.set_payload_max_length(opt.maxBodyBytes);
    http.set_read_timeout(opt.readTimeoutSeconds, 0);
    http.set_write_timeout(opt.readTimeoutSeconds, 0);
    http.set_keep_alive_timeout(opt.keepAliveSeconds);
    http.set_keep_alive_max_count(100000);
    http.set_tcp_nodelay(true);  // SSE chunks are small and must leave at once

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (opt.apiKey.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
        if (req.get_header_value("Authorization") == "Bearer " + opt.apiKey)
            return httplib::Server::HandlerResponse::Unhandled;
        ApiError e{401, "invalid or missing API key (send Authorization: Bearer <key>)", "invalid_request_error", "",
                   "invalid_api_key"};
        sendError(res, e);
        return httplib::Server::HandlerResponse::Handled;
    });

    // Errors httplib produces itself (no route, body too large, malformed HTTP) get OpenAI's JSON shape too.
    // httplib calls this outside its own try block: an exception here would reach std::terminate, so nothing
    // may escape (the path is raw client bytes; apiErrorBody makes it valid UTF-8).
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) noexcept {
      try {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiError e;
        e.status = res.status;
        if (res.status == 404) {
            e.message = "no route for " + req.method + " " + req.path;
            e.code = "not_found";
        } else if (res.status == 413) {
            e.message = "the request body is larger than the server's limit of " +
                        std::to_string(opt.maxBodyBytes) + " bytes (wb serve --max-body-mb)";
            e.code = "request_too_large";
        } else {
            e.message = "bad HTTP request (" + std::to_string(res.status) + ")";
        }
        sendError(res, e);
        return httplib::Server::HandlerResponse::Handled;
      } catch (...) {
        res.set_content(kInternalErrorBody, "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
    }));

    // Whatever a route handler throws becomes a 500 in OpenAI's shape; the process and the connection live on.
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) noexcept {
        res.status = 500;
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& ex) {
            try {
                res.set_content(apiErrorBody({500, std::string("internal error: ") + ex.what(), "server_error", "",
                                              "internal_error"}),
                                "application/json");
                return;
            } catch (...) {
            }
        } catch (...) {
        }
        res.set_content(kInternalErrorBody, "application/json");
    });

    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) noexcept {
        try {
            static const std::set<std::string> known = {"/v1/models", "/v1/chat/completions", "/v1/completions",
                                                        "/health", "/metrics"};
            metrics.countRequest(known.count(req.path) ? req.path : "other", res.status);
            if (opt.logRequests)
                std::fprintf(stderr, "%s:%d %s %s %d\n", req.remote_addr.c_str(), req.remote_port,
                             req.method.c_str(), sanitizeUtf8(req.path).c_str(), res.status);
        } catch (...) {
        }
    });

    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics.render(engine.stats(), modelName), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        json j{{"object", "list"},
               {"data",
                json::array({{{"id", modelName},
                              {"object", "model"},
                              {"created", int64_t(startedAt)},
                              {"owned_by", "workbench"},
                              {"root", engine.options().modelPath},
                              {"max_model_len", maxModelLen}}})}};
        res.set_content(dumpJson(j), "application/json");
    });
    http.Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) { handleGenerate(req, res, true); });
    http.Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) { handleGenerate(req, res, false); });
}

void OpenAiServer::Impl::handleGenerate(const httplib::Request& req, httplib::Response& res, bool chat) {
    json body;
    try {
        body = json::parse(req.body);
    } catch (const json::exception& ex) {
        return sendError(res, {400, std::string("the request body is not valid JSON: ") + ex.what(),
                               "invalid_request_error", "", "invalid_json"});
    }
    if (body.is_object() && body.contains("model") && body["model"].is_string() &&
        body["model"].get<std::string>() != modelName)
        return sendError(res, {404, "The model `" + body["model"].get<std::string>() + "` does not exist (this server "
                                    "serves `" + modelName + "`).",
                               "invalid_request_error", "model", "model_not_found"});

    ApiRequest ar;
    ar.model = modelName;
    ModelCaps caps;
    caps.images = engine.acceptsImages();
    if (auto e = chat ? parseChatRequest(body, opt.media, caps, ar) : parseCompletionRequest(body, ar))
        return sendError(res, *e);
    ar.model = modelName;

    // Tokenize here rather than in the engine, so a prompt that cannot fit is a 400 before anything streams.
    const Tokenizer& tok = engine.tokenizer();
    std::vector<int32_t> ids;
    std::vector<std::string> stops = ar.stop;
    if (chat) {
        // The engine's own preparation (template, images decoded and sized): the count is the one it will run.
        Request probe;
        probe.messages = ar.messages;
        probe.enableThinking = ar.enableThinking;
        auto p = engine.promptTokens(probe);
        if (!p) return sendError(res, {400, p.error().message, "invalid_request_error", "messages", ""});
        ids = std::move(*p);
    } else if (!ar.promptTokens.empty()) {
        ids = ar.promptTokens;
        const int64_t vocab = engine.modelConfig().vocabSize;
        for (int32_t t : ids)
            if (t < 0 || t >= vocab)
                return sendError(res, {400, "token id " + std::to_string(t) + " is outside the vocabulary of " +
                                                std::to_string(vocab),
                                       "invalid_request_error", "prompt", ""});
    } else {
        ids = tok.encode(ar.prompt, tok.addBosByDefault(), SpecialTokens::Plain);
    }
    const int64_t promptLen = int64_t(ids.size());
    if (promptLen >= maxModelLen)
        return sendError(res, {400, "the prompt has " + std::to_string(promptLen) +
                                        " tokens; this model's maximum context length is " +
                                        std::to_string(maxModelLen) + " tokens",
                               "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded"});
    const int64_t maxTokens = ar.maxTokens.value_or(maxModelLen - promptLen);
    if (promptLen + maxTokens > maxModelLen)
        return sendError(res, {400, "this model's maximum context length is " + std::to_string(maxModelLen) +
                                        " tokens; the request has " + std::to_string(promptLen) +
                                        " prompt tokens and asks for " + std::to_string(maxTokens) +
                                        " more (max_tokens)",
                               "invalid_request_error", "max_tokens", "context_length_exceeded"});
    const StatsSnapshot st = engine.stats();
    if (st.kvBlockSize > 0 && (promptLen + maxTokens + st.kvBlockSize - 1) / st.kvBlockSize > st.kvBlocksTotal)
        return sendError(res, {400, "the request needs " + std::to_string(promptLen + maxTokens) +
                                        " tokens of KV cache but the whole cache holds " +
                                        std::to_string(st.kvBlocksTotal * st.kvBlockSize),
                               "invalid_request_error", "max_tokens", "context_length_exceeded"});
    if (outstanding.load() >= engine.options().maxNumSeqs + opt.maxQueued)
        return sendError(res, {429, "the server's queue is full (" + std::to_string(opt.maxQueued) +
                                        " waiting beyond the running batch); retry later",
                               "rate_limit_error", "", "queue_full"});

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

    auto ch = std::make_shared<Channel>();
    ++outstanding;
    {
        // Held across submit so the sink's erase cannot run before the insert.
        std::lock_guard lock(liveMutex);
        ch->id = engine.submit(std::move(r), [this, ch](const Event& e) {
            const bool last = e.type == EventType::Finished || e.type == EventType::Error;
            if (last) metrics.recordFinished(e);
            {
                std::lock_guard l(ch->mutex);
                ch->events.push_back(e);
                if (last) ch->finished = true;
            }
            ch->cv.notify_all();
            if (last) {
                {
                    std::lock_guard l(liveMutex);
                    live.erase(e.id);
                }
                --outstanding;  // last: after this the server may be destroyed
            }
        });
        live.insert(ch->id);
    }

    const std::string id = (chat ? "chatcmpl-" : "cmpl-") + randomHex(24);
    const int64_t created = int64_t(std::time(nullptr));
    const std::string object = chat ? "chat.completion" : "text_completion";

    if (!ar.stream) {
        Assembler as;
        as.returnReasoning = ar.returnReasoning;
        Event fin;
        {
            std::unique_lock lock(ch->mutex);
            ch->cv.wait(lock, [&] { return ch->finished; });
            for (const Event& e : ch->events) {
                as.push(e);
                if (e.type == EventType::Finished || e.type == EventType::Error) fin = e;
            }
        }
        if (fin.type == EventType::Error)
            return sendError(res, {500, "generation failed: " + fin.text, "server_error", "", ""});
        json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finishReason(fin)}};
        if (chat) {
            json msg{{"role", "assistant"}, {"content", as.content}};
            if (ar.returnReasoning) msg["reasoning_content"] = as.reasoning.empty() ? json(nullptr) : json(as.reasoning);
            choice["message"] = msg;
        } else {
            choice["text"] = as.content;
        }
        json j{{"id", id},      {"object", object},          {"created", created},
               {"model", modelName}, {"choices", json::array({choice})}, {"usage", usageJson(fin)}};
        res.set_content(dumpJson(j), "application/json");
        return;
    }

    struct StreamState {
        Assembler as;
        bool sentRole = false;
        bool done = false;
    };
    auto ss = std::make_shared<StreamState>();
    ss->as.returnReasoning = ar.returnReasoning && chat;
    const bool includeUsage = ar.includeUsage;
    const std::string chunkObject = chat ? "chat.completion.chunk" : "text_completion";
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
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [=, this](size_t, httplib::DataSink& sink) noexcept -> bool {
          // Called while httplib writes the response, outside its try block: nothing may escape.
          try {
            std::string out;
            if (!ss->sentRole) {
                // The role chunk goes out at once: the client sees the stream open before the prefill ends.
                ss->sentRole = true;
                out = chat ? chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr) : std::string(": ok\n\n");
                return sink.write(out.data(), out.size());
            }
            std::deque<Event> batch;
            {
                std::unique_lock lock(ch->mutex);
                // Wake at least once a second to send a comment: that write is how a vanished client is noticed
                // while nothing is generated (a long prefill, a full queue).
                ch->cv.wait_for(lock, std::chrono::seconds(1), [&] { return !ch->events.empty(); });
                batch.swap(ch->events);
            }
            bool finished = false;
            for (const Event& e : batch) {
                if (e.type == EventType::Error) {
                    ApiError err{500, "generation failed: " + e.text, "server_error", "", ""};
                    out += "data: " + apiErrorBody(err) + "\n\n";
                    finished = true;
                    break;
                }
                auto [c, r] = ss->as.push(e);
                if (!r.empty()) out += chunk(json{{"reasoning_content", r}}, nullptr);
                if (!c.empty()) out += chunk(json{{"content", c}}, nullptr);
                if (e.type == EventType::Finished) {
                    out += chunk(json::object(), finishReason(e));
                    if (includeUsage) {
                        json u{{"id", id}, {"object", chunkObject}, {"created", created}, {"model", modelName},
                               {"choices", json::array()}, {"usage", usageJson(e)}};
                        out += sse(u);
                    }
                    finished = true;
                }
            }
            if (finished) out += "data: [DONE]\n\n";
            if (out.empty()) out = ": keep-alive\n\n";
            if (!sink.write(out.data(), out.size())) return false;
            if (finished) {
                ss->done = true;
                sink.done();
            }
            return true;
          } catch (...) {
            return false;  // ends the connection; the releaser below cancels the request
          }
        },
        [this, ss, ch](bool) {
            // The stream ended early (client gone, write timeout): stop generating and free its KV blocks.
            if (!ss->done) engine.cancel(ch->id);
        });
}

}  // namespace wb
