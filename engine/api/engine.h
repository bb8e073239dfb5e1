// The engine's public API: submit requests, receive their events, cancel them, read stats snapshots.
// One loop thread owns scheduling (continuous batching over a paged KV cache) and runs each step on the
// model's thread pool. Nothing here throws; errors reach the request's sink as Error events.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "api/model_types.h"
#include "api/sampling.h"

namespace wb {

class Tokenizer;  // api/tokenizer.h

using RequestId = uint64_t;

/// A piece of a message: text, or an encoded image (PNG or JPEG bytes, decoded by the engine) for vision models.
struct ContentPart {
    enum class Kind { Text, Image };
    Kind kind = Kind::Text;
    std::string text;
    std::shared_ptr<const std::vector<uint8_t>> image;  // Image: the encoded PNG/JPEG bytes, or null with imagePath
    /// Image: a PNG/JPEG file the engine reads itself, on its preparation thread, when the request is prepared
    /// (before the feature and prefix caches, which key images by their bytes). A caller with a thread that must
    /// not block (the GUI) hands over a path rather than megabytes it would have to read first. A file that
    /// cannot be read ends the request with an error naming the path. Only for local callers: the HTTP server
    /// never builds one from a client's input.
    std::string imagePath;

    static ContentPart makeText(std::string t) { return {Kind::Text, std::move(t), nullptr, {}}; }
    static ContentPart makeImage(std::vector<uint8_t> bytes) {
        return {Kind::Image, {}, std::make_shared<const std::vector<uint8_t>>(std::move(bytes)), {}};
    }
    static ContentPart makeImageFile(std::string path) { return {Kind::Image, {}, nullptr, std::move(path)}; }
};

struct ChatMessage {
    std::string role;  // system | user | assistant
    std::string content;
    /// When non-empty, the message is these parts in order (text and images) and `content` is ignored. Images
    /// reach the model only through image parts: text is always tokenized as plain text, so "<|image|>" typed
    /// by a user stays those characters.
    std::vector<ContentPart> parts;

    /// Image parts of either kind (bytes or a file).
    bool hasImages() const {
        for (const ContentPart& p : parts)
            if (p.kind == ContentPart::Kind::Image) return true;
        return false;
    }
};

struct Request {
    /// Exactly one prompt source is used: promptTokens if non-empty, else messages (rendered with the
    /// checkpoint's chat template, or a plain transcript when it has none), else prompt (raw text + BOS).
    std::vector<int32_t> promptTokens;
    std::vector<ChatMessage> messages;
    std::string prompt;
    SamplingParams sampling;
    int64_t maxTokens = 256;
    std::vector<std::string> stop;
    bool ignoreEos = false;       // benchmarks: always generate maxTokens
    bool enableThinking = true;   // passed to the template as enable_thinking
};

enum class EventType { TextDelta, ReasoningDelta, Finished, Error };
enum class StopReason { Stop, Length, Cancelled, Error };
const char* stopReasonName(StopReason r);

struct Usage {
    int64_t promptTokens = 0;  // < 0: not known (a benchmarked server that reported no usage)
    int64_t completionTokens = 0;
    int64_t cachedPromptTokens = 0;  // prompt tokens whose keys/values came from the prefix cache
};

struct RequestTimings {
    double queueMs = 0;        // submit → first scheduled
    double ttftMs = 0;         // submit → first token sampled
    double e2eMs = 0;          // submit → finished
    std::vector<double> interTokenMs;
};

struct Event {
    RequestId id = 0;
    EventType type = EventType::TextDelta;
    std::string text;  // delta text, or the error message
    // Finished / Error only (default-initialized, so a delta event can name just id, type and text):
    StopReason reason = StopReason::Stop;
    Usage usage{};
    RequestTimings timings{};
    std::vector<int32_t> tokens{};  // the generated ids
};

/// Called on the engine's loop thread, in order for one request, ending with exactly one Finished or Error
/// event. Keep it short (queue the event elsewhere); an exception thrown from it is swallowed.
using EventSink = std::function<void(const Event&)>;

struct EngineOptions {
    std::string modelPath;
    LoadOptions load;
    int64_t blockSize = 16;
    int64_t numKvBlocks = 0;       // explicit pool size; 0: from kvCacheBytes or memory
    int64_t kvCacheBytes = 0;      // 0: kvMemoryFraction of the memory available after loading
    double kvMemoryFraction = 0.3;
    KvCacheType kvCacheType = KvCacheType::Auto;
    /// On GPUs: the fraction of each GPU's free memory (after the weights are loaded) the KV cache may take; the
    /// pool is the largest that fits every rank (kvCacheBytes, when set, is then a per-GPU budget).
    double gpuKvMemoryFraction = 0.85;
    int maxNumSeqs = 64;
    int64_t maxModelLen = 0;       // 0: the model's context length
    int64_t maxBatchTokens = 512;  // per-step token budget (decodes first, then prefill chunks)
    /// Reuse the KV blocks of identical prompt prefixes (a long system prompt sent with every request) instead of
    /// recomputing them; cached blocks are kept until their memory is needed.
    bool prefixCaching = true;
    /// Vision models: the most pixels an image is resized to (the processor's max_pixels; the model's own phone
    /// deployments use 5,000,000 for full-size screenshots). 0: the checkpoint's preprocessor_config.json.
    int64_t maxImagePixels = 0;
};

struct RequestStats {
    RequestId id = 0;
    std::string state;  // preparing (images being encoded) | waiting | prefill | decode
    /// What it is doing within that state: "decoding the image", "resizing 1080x2400", "vision tower 7/24"
    /// (" (image 1 of 2)" with several), "1024/3136 prompt tokens" while its prompt is prefilled; may be empty.
    std::string stage;
    int64_t promptTokens = 0;
    int64_t generatedTokens = 0;
    int64_t kvBlocks = 0;
    double ageMs = 0;
    double ttftMs = -1;
};

struct StepStats {
    uint64_t step = 0;
    int batchSize = 0;  // sequences in the step
    int64_t prefillTokens = 0;
    int64_t decodeTokens = 0;
    double stepMs = 0;
    double atMs = 0;  // since engine start
};

/// One device of the model (a GPU, or a rank of a tensor-parallel split; the host when there is one device).
struct DeviceStats {
    std::string name;
    int64_t weightBytes = 0;
    int64_t kvCacheBytes = 0;  // its share of the KV pool
    int64_t totalBytes = 0;    // the device's memory (the host's RAM for CPU devices)
    int64_t freeBytes = 0;
    int64_t workspaceBytes = 0;  // reserved at load for the largest step (GPUs), outside the KV budget
};

/// Where the engine stands.
enum class EngineState {
    Serving,    // requests run
    Faulted,    // a device failed for good (a sticky GPU error such as an illegal address, or tensor-parallel
                // communicators that could not be re-created): every request ends at once with an Error event
                // naming the reason, until reload() succeeds
    Reloading,  // reload() is running
};
/// "serving", "faulted", "reloading".
const char* engineStateName(EngineState s);

struct StatsSnapshot {
    std::vector<RequestStats> requests;
    std::vector<StepStats> recentSteps;  // newest last, up to 256
    int64_t kvBlocksTotal = 0;
    int64_t kvBlocksUsed = 0;
    int64_t kvBlockSize = 0;
    int64_t weightBytes = 0;
    int64_t kvCacheBytes = 0;
    std::string kvCacheType;  // what the pool stores: "f32" or "f16"
    int numWaiting = 0;    // not yet scheduled, the ones being prepared included
    int numPreparing = 0;  // images being decoded and encoded before the request can be scheduled
    int numRunning = 0;
    uint64_t totalRequests = 0;
    uint64_t totalFinished = 0;
    uint64_t totalPreemptions = 0;
    uint64_t totalGeneratedTokens = 0;
    uint64_t totalCachedPromptTokens = 0;
    uint64_t totalImagesEncoded = 0;  // vision-tower runs (an image seen recently reuses its features)
    uint64_t totalImagesDecoded = 0;  // PNG/JPEG decodes (a server's count and the submit after it share one)
    std::string device;  // "cpu (N threads, ISA)"
    std::vector<DeviceStats> devices;  // per device, refreshed at most 4 times a second
    EngineState state = EngineState::Serving;
    std::string faultReason;  // Faulted: why (the device's first sticky error)
};

class Engine {
public:
    /// Loads the model and sizes the KV pool (blocking: call it off any UI thread).
    static Result<std::unique_ptr<Engine>> create(const EngineOptions& options);
    ~Engine();  // cancels what is live, joins the loop
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    /// Queues a request and returns its id at once. Thread-safe. While Faulted the request ends with an Error
    /// event naming the fault (on the caller's thread, before submit returns, when a failed reload left no model).
    RequestId submit(Request request, EventSink sink);
    /// Cancels a live request (its sink gets Finished with reason Cancelled). False if unknown or done.
    /// Thread-safe.
    bool cancel(RequestId id);
    /// A copy of the current stats. Thread-safe, cheap, callable at any rate.
    StatsSnapshot stats() const;
    /// While held, requests are taken in (and prepared) but no step runs; releasing starts them together, as a
    /// burst arriving at once (load tests, tests of batching). Thread-safe.
    void holdScheduling(bool hold);
    /// Blocks until no request is waiting or running (tests, benchmarks).
    void waitIdle() const;

    /// Serving, Faulted or Reloading. Thread-safe.
    EngineState state() const;
    /// Why the engine is Faulted (empty otherwise). Thread-safe.
    std::string faultReason() const;
    /// Destroys the model and everything it holds on its devices, resets those devices (on GPUs:
    /// cudaDeviceReset, which discards a context left unusable by a fault), and loads the model again with the
    /// same options: the way out of Faulted (allowed in any state). Blocking, like create(); requests end first
    /// (cancelled), submit() and cancel() from other threads wait for it, stats() answers at once with state
    /// Reloading. If loading fails the engine stays Faulted with that reason and reload() may be tried again.
    /// The references modelConfig() and tokenizer() returned before are invalid afterwards. Request ids keep
    /// counting up across reloads. Not from an EventSink (it runs on the loop thread that reload joins), nor while
    /// the same thread waits in waitIdle().
    Result<void> reload();

    const ModelConfig& modelConfig() const;
    /// Needs a loaded model: not after a reload() that failed to load one.
    const Tokenizer& tokenizer() const;
    /// Whether requests may carry image parts (a vision model is loaded).
    bool acceptsImages() const;
    /// The prompt a request would run (template, tokenization; images decoded and sized, not encoded), without
    /// queueing it: for servers that check lengths before answering. Thread-safe. Errors are the ones submit()
    /// would report.
    Result<std::vector<int32_t>> promptTokens(const Request& request) const;
    const EngineOptions& options() const;

private:
    Engine() = default;
    struct Impl;
    std::unique_ptr<Impl> m;
};

}  // namespace wb
