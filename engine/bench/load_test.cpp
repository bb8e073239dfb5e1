#include "api/load_test.h"

#include "api/tokenizer.h"
#include "media/image.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>

namespace wb {

void EngineTarget::start(const BenchRequest& b, std::function<void(const Event&)> onEvent) {
    Request r;
    r.maxTokens = b.maxTokens;
    r.ignoreEos = true;
    if (b.images.empty() && !m_chat) {
        r.promptTokens = b.promptTokens;
    } else {
        // As an HTTP chat request carries it: one user message, the images, then the prompt as text.
        ChatMessage m{"user", {}, {}};
        for (const ImageBytes& img : b.images) m.parts.push_back({ContentPart::Kind::Image, {}, img, {}});
        m.parts.push_back(ContentPart::makeText(m_engine.tokenizer().decode(b.promptTokens)));
        r.messages.push_back(std::move(m));
    }
    m_engine.submit(std::move(r), std::move(onEvent));
}

namespace {

bool printableAscii(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7E) return false;
    return true;
}

}  // namespace

RoundTripPrompts::RoundTripPrompts(const Tokenizer& tokenizer) : m_tok(tokenizer) {
    const int32_t vocab = m_tok.vocabSize();
    for (int32_t id = 0; id < vocab; ++id) {
        if (m_tok.isControl(id)) continue;
        const std::string bytes = m_tok.tokenBytes(id);
        if (!printableAscii(bytes) || bytes.back() == ' ') continue;
        // Added tokens that are not control tokens ("<think>"): their text parses back to them, not to plain text.
        if (m_tok.encode(bytes, false, SpecialTokens::Parse) != m_tok.encode(bytes, false, SpecialTokens::Plain))
            continue;
        m_pool.push_back(id);
        // As a prompt's first token: SentencePiece's decode drops the space of "▁word", byte-level BPE keeps it.
        const std::string alone = m_tok.decode({id});
        if (!alone.empty() && alone.front() != ' ') m_first.push_back(id);
    }
}

bool RoundTripPrompts::roundTrips(const std::vector<int32_t>& ids) const {
    const std::string text = m_tok.decode(ids);
    if (!printableAscii(text) || text.front() == ' ' || text.back() == ' ') return false;
    const std::vector<int32_t> plain = m_tok.encode(text, false, SpecialTokens::Plain);
    // Parsed as a server's tokenizer may parse it: no special-token text ("<|user|>") hides in it.
    return plain == ids && m_tok.encode(text, false, SpecialTokens::Parse) == plain;
}

std::vector<int32_t> RoundTripPrompts::make(std::mt19937_64& rng, int64_t n) const {
    std::vector<int32_t> ids;
    if (n <= 0) return ids;
    const size_t want = size_t(n);
    if (!usable()) {
        const int32_t vocab = std::max(1, m_tok.vocabSize());
        std::uniform_int_distribution<int32_t> d(std::min(100, vocab - 1), vocab - 1);
        for (size_t i = 0; i < want; ++i) ids.push_back(d(rng));
        return ids;
    }
    auto draw = [&](const std::vector<int32_t>& from) {
        return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
    };
    // Draw, then re-tokenize the text and top up or cut back to n until the ids are the text's own tokenization:
    // joined pieces may merge (BPE) or split differently (a SentencePiece word's ▁), so a few rounds are needed.
    for (int attempt = 0; attempt < 8; ++attempt) {
        ids.assign(1, draw(m_first));
        while (ids.size() < want) ids.push_back(draw(m_pool));
        for (int round = 0; round < 16; ++round) {
            if (roundTrips(ids)) return ids;
            const std::string text = m_tok.decode(ids);
            std::vector<int32_t> again = m_tok.encode(text, false, SpecialTokens::Plain);
            if (again.empty() || m_tok.encode(text, false, SpecialTokens::Parse) != again) break;  // draw anew
            if (again.size() > want) again.resize(want);
            while (again.size() < want) again.push_back(draw(m_pool));
            const std::string head = m_tok.decode({again.front()});
            if (head.empty() || head.front() == ' ') again.front() = draw(m_first);
            ids = std::move(again);
        }
    }
    return ids;  // not seen here (tests hold each tokenizer kind to round trips); the target's count is reported
}

ImageWorkload::ImageWorkload() = default;
ImageWorkload::~ImageWorkload() = default;

Result<std::unique_ptr<ImageWorkload>> ImageWorkload::create(std::vector<std::vector<uint8_t>> images, bool distinct,
                                                             const std::vector<std::string>& names) {
    if (images.empty()) return makeError("an image workload needs at least one image");
    auto w = std::make_unique<ImageWorkload>();
    w->m_distinct = distinct;
    for (size_t i = 0; i < images.size(); ++i) {
        const std::string name = i < names.size() ? names[i] : "image " + std::to_string(i + 1);
        auto img = decodeImage(images[i], name);
        if (!img) return img.error();
        w->m_info.push_back({name, int64_t(images[i].size()), img->width, img->height});
        w->m_base.push_back(std::make_shared<const std::vector<uint8_t>>(std::move(images[i])));
        if (distinct) w->m_decoded.push_back(std::move(*img));
    }
    return w;
}

Result<std::unique_ptr<ImageWorkload>> ImageWorkload::fromFiles(const std::vector<std::string>& paths, bool distinct) {
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<std::string> names;
    for (const std::string& path : paths) {
        std::ifstream f(path, std::ios::binary);
        if (!f) return makeError("cannot read the image " + path);
        bytes.emplace_back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (detectImageFormat(bytes.back()) == ImageFormat::Unknown) return makeError(path + " is not a PNG or JPEG image");
        names.push_back(path);
    }
    auto w = create(std::move(bytes), distinct, names);
    if (!w) return w;
    for (Info& in : (*w)->m_info) in.name = std::filesystem::path(in.name).filename().string();
    return w;
}

Result<std::vector<std::vector<ImageBytes>>> ImageWorkload::take(int n) {
    std::vector<std::vector<ImageBytes>> out(size_t(std::max(n, 0)));
    if (!m_distinct) {
        for (auto& set : out) set = m_base;
        return out;
    }
    // Every (request, image) is its own PNG encode (hundreds of ms for a 5 MP screenshot): spread over the cores,
    // before any timing starts.
    const size_t perSet = m_decoded.size(), jobs = out.size() * perSet;
    for (auto& set : out) set.resize(perSet);
    const uint64_t first = m_next + 1;
    m_next += uint64_t(out.size());
    std::atomic<size_t> next{0};
    std::mutex errorMutex;
    std::string error;
    auto worker = [&] {
        for (size_t j; (j = next.fetch_add(1)) < jobs;) {
            const size_t r = j / perSet, i = j % perSet;
            const uint64_t serial = first + r;
            // The request's serial number in the first 8 pixels' red channel: a different picture to any hash of
            // bytes or pixels, invisible to the model's task.
            Image img = m_decoded[i];
            for (int k = 0; k < 8 && k < img.width * img.height; ++k) img.rgb[size_t(k) * 3] = uint8_t(serial >> (8 * k));
            auto png = encodePng(img);
            if (!png) {
                std::lock_guard lock(errorMutex);
                if (error.empty()) error = png.error().message;
                continue;
            }
            out[r][i] = std::make_shared<const std::vector<uint8_t>>(std::move(*png));
        }
    };
    const size_t threads = std::min<size_t>(jobs, std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    if (!error.empty()) return makeError(error);
    return out;
}

Summary summarize(std::vector<double> v) {
    Summary s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    double sum = 0;
    for (double x : v) sum += x;
    s.mean = sum / double(v.size());
    double sq = 0;
    for (double x : v) sq += (x - s.mean) * (x - s.mean);
    s.stddev = v.size() > 1 ? std::sqrt(sq / double(v.size() - 1)) : 0;
    // Linear interpolation between closest ranks (numpy's default).
    auto pct = [&](double p) {
        const double pos = p / 100.0 * double(v.size() - 1);
        const size_t lo = size_t(std::floor(pos)), hi = std::min(v.size() - 1, lo + 1);
        return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
    };
    s.p50 = pct(50);
    s.p90 = pct(90);
    s.p99 = pct(99);
    s.min = v.front();
    s.max = v.back();
    return s;
}

LoadTestResult runLoadTest(BenchTarget& target, const LoadTestOptions& o) {
    using Clock = std::chrono::steady_clock;
    const int total = o.numRequests > 0 ? o.numRequests : std::max(4 * o.concurrency, 8);
    // Prompts differ between concurrency levels (the seed is mixed with the level): with the same prompts at every
    // level, a server with a prefix cache (this one, vLLM, SGLang, llama-server) would answer the later levels'
    // prompts from the cache and look faster for it. The same seed and level give the same prompts on every target.
    std::mt19937_64 rng(o.seed ^ (uint64_t(o.concurrency) * 0x9E3779B97F4A7C15ull));
    // Token-id targets: random ids away from the special ids at the start of most vocabularies, like llama-bench.
    // Text workloads: prompts whose text round-trips through the model's tokenizer (RoundTripPrompts).
    std::optional<RoundTripPrompts> text;
    if (o.textPrompts) {
        text.emplace(*o.textPrompts);
        if (!text->usable()) text.reset();
    }
    auto makePrompt = [&] {
        if (text) return text->make(rng, o.inputTokens);
        std::vector<int32_t> p(size_t(o.inputTokens));
        std::uniform_int_distribution<int32_t> d(std::min(100, o.vocabSize - 1), o.vocabSize - 1);
        for (auto& t : p) t = d(rng);
        return p;
    };

    std::mutex mutex;
    std::condition_variable cv;
    int inFlight = 0, started = 0, finished = 0;
    LoadTestResult res;
    res.concurrency = o.concurrency;
    res.textPrompts = text.has_value();
    std::vector<double> ttft, e2e, itl, tpot;

    if (o.images && !target.acceptsImages()) {
        res.requests = total;
        res.errors = total;
        res.firstError = target.name() + " cannot send images with its requests (a vision model, and for a server "
                                         "the chat endpoint, are needed)";
        return res;
    }
    // Every request's images are made before anything is timed (distinct images are re-encoded per request).
    std::vector<std::vector<ImageBytes>> imageSets;
    if (o.images) {
        auto sets = o.images->take(o.warmupRequests + total);
        if (!sets) {
            res.requests = total;
            res.errors = total;
            res.firstError = sets.error().message;
            return res;
        }
        imageSets = std::move(*sets);
    }
    // Every prompt is made before anything is timed too (a text prompt takes a few tokenizer passes), in the order
    // the requests go: warm-ups first.
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < std::max(0, o.warmupRequests) + total; ++i) prompts.push_back(makePrompt());
    size_t nextSet = 0, nextPrompt = 0;
    auto request = [&](int64_t maxTokens) {
        BenchRequest b;
        b.promptTokens = std::move(prompts[nextPrompt++]);
        b.maxTokens = maxTokens;
        if (nextSet < imageSets.size()) b.images = std::move(imageSets[nextSet++]);
        return b;
    };

    // Warm-up requests run alone and are not counted.
    for (int i = 0; i < o.warmupRequests; ++i) {
        bool done = false;
        target.start(request(std::min<int64_t>(o.outputTokens, 8)), [&](const Event& e) {
            if (e.type != EventType::Finished && e.type != EventType::Error) return;
            std::lock_guard lock(mutex);
            done = true;
            cv.notify_all();
        });
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return done; });
    }

    const auto t0 = Clock::now();
    // Arrival gaps have their own generator so the prompts match the closed-loop run with the same seed.
    std::mt19937_64 arrivals(o.seed ^ 0x9E3779B97F4A7C15ull);
    std::exponential_distribution<double> gap(o.requestRate > 0 ? o.requestRate : 1.0);
    double nextArrival = 0;  // seconds after t0
    std::unique_lock lock(mutex);
    auto cancelled = [&] { return o.cancel && o.cancel->load(); };
    int expected = total;  // lowered to what was started once cancelled
    while (finished < expected) {
        if (cancelled()) {
            expected = started;
            res.cancelled = true;
            if (finished >= expected) break;
        }
        while (!cancelled() && inFlight < o.concurrency && started < total) {
            if (o.requestRate > 0) {
                const auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(nextArrival));
                if (Clock::now() < due) {
                    cv.wait_until(lock, due);
                    continue;
                }
                nextArrival += gap(arrivals);
            }
            ++inFlight;
            ++started;
            const BenchRequest b = request(o.outputTokens);
            lock.unlock();
            target.start(b, [&](const Event& e) {
                if (e.type != EventType::Finished && e.type != EventType::Error) return;
                std::lock_guard l(mutex);
                if (e.type == EventType::Error || e.reason == StopReason::Error) {
                    ++res.errors;
                    if (res.firstError.empty()) res.firstError = e.text;
                } else {
                    ttft.push_back(e.timings.ttftMs);
                    e2e.push_back(e.timings.e2eMs);
                    itl.insert(itl.end(), e.timings.interTokenMs.begin(), e.timings.interTokenMs.end());
                    res.outputTokens += e.usage.completionTokens;
                    if (e.usage.promptTokens >= 0) {  // < 0: the target reported none
                        const int64_t n = e.usage.promptTokens;
                        res.promptTokensMin = res.promptTokensReported ? std::min(res.promptTokensMin, n) : n;
                        res.promptTokensMax = res.promptTokensReported ? std::max(res.promptTokensMax, n) : n;
                        res.promptTokens += n;
                        ++res.promptTokensReported;
                    }
                    if (e.usage.completionTokens > 1)
                        tpot.push_back((e.timings.e2eMs - e.timings.ttftMs) / double(e.usage.completionTokens - 1));
                }
                --inFlight;
                ++finished;
                if (o.onProgress) o.onProgress(finished, total);
                cv.notify_all();
            });
            lock.lock();
        }
        // Cancellation is polled: the flag belongs to the caller and cannot wake this wait.
        cv.wait_for(lock, std::chrono::milliseconds(100), [&] {
            // Once cancelled, only finishing requests wake us: "could start more" must not hold, or this wait
            // returns at once without releasing the mutex and starves the callbacks that need it.
            return finished >= expected || (!cancelled() && inFlight < o.concurrency && started < total);
        });
    }
    res.wallSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
    res.requests = res.cancelled ? started : total;
    res.ttftSamplesMs = ttft;
    res.e2eSamplesMs = e2e;
    res.ttftMs = summarize(ttft);
    res.e2eMs = summarize(e2e);
    res.itlMs = summarize(itl);
    res.tpotMs = summarize(tpot);
    res.outputTokensPerSecond = res.wallSeconds > 0 ? double(res.outputTokens) / res.wallSeconds : 0;
    res.requestsPerSecond = res.wallSeconds > 0 ? double(res.requests - res.errors) / res.wallSeconds : 0;
    return res;
}

}  // namespace wb
