// `wb serve`: the OpenAI-compatible HTTP server over one engine.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <thread>

#include "api/engine.h"
#include "cli/cli_options.h"
#include "cli/commands.h"
#include "api/server.h"

namespace wb::cli {

int cmdServe(const Args& a) {
    if (!a.has("model")) return fail("no model given (-m PATH)");
    wb::EngineOptions eo;
    eo.modelPath = a.get("model");
    auto prec = wb::parsePrecision(a.get("precision", "native"));
    if (!prec) return fail(prec.error().message);
    eo.load.precision = *prec;
    int64_t threads = 0, maxSeqs = 64, kvMb = 0, port = 8000, bodyMb = 64, images = 10, audios = 10, queued = 256;
    if (!number(a, "threads", threads) || !number(a, "max-num-seqs", maxSeqs) || !number(a, "kv-cache-mb", kvMb) ||
        !number(a, "port", port) || !number(a, "max-body-mb", bodyMb) || !number(a, "max-images", images) ||
        !number(a, "max-audios", audios) || !number(a, "max-queued", queued))
        return 2;
    if (port < 0 || port > 65535) return fail("--port must be 0-65535");
    if (bodyMb <= 0 || images < 0 || audios < 0 || queued < 0 || maxSeqs <= 0) return fail("limits must be positive");
    eo.load.numThreads = int(threads);
    {
        std::string derr;
        if (!deviceFromArgs(a, eo.load, derr) || !kvCacheFromArgs(a, eo, derr)) return fail(derr);
    }
    eo.maxNumSeqs = int(maxSeqs);
    if (!number(a, "max-pixels", eo.maxImagePixels)) return 2;
    eo.kvCacheBytes = kvMb << 20;
    wb::ServeOptions so;
    so.host = a.get("host", "127.0.0.1");
    so.port = int(port);
    so.servedModelName = a.get("served-model-name");
    so.apiKey = a.get("api-key");
    so.maxBodyBytes = size_t(bodyMb) << 20;
    so.media.maxImages = size_t(images);
    so.media.maxAudios = size_t(audios);
    so.maxQueued = int(queued);
    so.logRequests = a.has("log-requests");
    if (auto lim = wb::applyServeLimitOptions(a.opt, so); !lim) return fail(lim.error().message);
    if (a.has("asr-model")) {
        std::fprintf(stderr, "wb serve: loading the speech model %s\n", a.get("asr-model").c_str());
        auto asr = wb::SpeechRecognizer::load(a.get("asr-model"), int(threads));
        if (!asr) return fail(asr.error().message);
        so.asr = std::shared_ptr<const wb::SpeechRecognizer>(std::move(*asr));
    }
    if (a.has("vad-model")) {
        auto vad = wb::SpeechDetector::load(a.get("vad-model"));
        if (!vad) return fail(vad.error().message);
        so.vad = *vad;
    }

    // SIGINT/SIGTERM are taken by one thread with sigwait so the shutdown runs outside a signal handler; they
    // are blocked before any other thread exists so every thread inherits the mask.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    std::fprintf(stderr, "wb serve: loading %s\n", eo.modelPath.c_str());
    auto engine = wb::Engine::create(eo);
    if (!engine) return fail(engine.error().message);
    auto server = wb::OpenAiServer::create(**engine, so);
    if (!server) return fail(server.error().message);
    auto bound = (*server)->bind();
    if (!bound) return fail(bound.error().message);
    std::fputs((*server)->startupSummary().c_str(), stderr);
    // On stdout, one line a launcher can parse for the port (with --port 0).
    std::printf("wb serve: listening on http://%s:%d/v1\n", so.host.c_str(), *bound);
    std::fflush(stdout);
    wb::OpenAiServer* srv = server->get();
    std::atomic<bool> running{true};
    std::thread waiter([&sigs, &running, &so, srv] {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (!running) return;
        std::fprintf(stderr, "wb serve: signal %d, draining (up to %d s)\n", sig, so.drainSeconds);
        // run() drains (running requests finish, then open streams end with an error event and [DONE]) and
        // returns; a second signal skips the wait.
        srv->stop();
        sigwait(&sigs, &sig);
        if (running) std::_Exit(0);
    });
    auto r = (*server)->run();
    running = false;
    // run() returned on its own (an error): wake the waiter so it can be joined.
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    server->reset();
    if (!r) return fail(r.error().message);
    return 0;
}

}  // namespace wb::cli
