// The engine under load on real weights (stories260K): batched greedy decoding gives exactly the tokens of
// one-at-a-time decoding, cancellation and preemption return every KV block, events arrive in order and end
// with exactly one terminal event.
#include <QtTest>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "api/engine.h"
#include "fixtures.h"
#include "models/decoder/generator.h"

namespace {

const char* kGguf = "models/stories260K/stories260K.gguf";

struct Collected {
    std::vector<wb::Event> events;
    bool terminal() const {
        return !events.empty() &&
               (events.back().type == wb::EventType::Finished || events.back().type == wb::EventType::Error);
    }
};

class Collector {
public:
    wb::EventSink sink() {
        return [this](const wb::Event& e) {
            std::lock_guard lock(m_mutex);
            m_byId[e.id].events.push_back(e);
            m_cv.notify_all();
        };
    }
    bool waitTerminal(wb::RequestId id, int timeoutMs = 60000) {
        std::unique_lock lock(m_mutex);
        return m_cv.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] { return m_byId[id].terminal(); });
    }
    bool waitAnyText(wb::RequestId id, int timeoutMs = 60000) {
        std::unique_lock lock(m_mutex);
        return m_cv.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] {
            for (const auto& e : m_byId[id].events)
                if (e.type == wb::EventType::TextDelta) return true;
            return false;
        });
    }
    Collected get(wb::RequestId id) {
        std::lock_guard lock(m_mutex);
        return m_byId[id];
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::map<wb::RequestId, Collected> m_byId;
};

std::unique_ptr<wb::Engine> makeEngine(int64_t numBlocks = 0, int maxSeqs = 64, int64_t budget = 512,
                                       wb::KvCacheType kvType = wb::KvCacheType::Auto) {
    wb::EngineOptions o;
    o.kvCacheType = kvType;
    o.modelPath = wbtest::fixture(kGguf);
    o.load.numThreads = 2;
    o.numKvBlocks = numBlocks;
    o.maxNumSeqs = maxSeqs;
    o.maxBatchTokens = budget;
    o.kvCacheBytes = int64_t(64) << 20;
    auto e = wb::Engine::create(o);
    if (!e) qWarning("engine: %s", e.error().message.c_str());
    return e ? std::move(*e) : nullptr;
}

const std::vector<std::string> kPrompts = {
    "Once upon a time",         "The little dog",       "Lily and Ben went to the park", "One day, a big bird",
    "Tom had a red ball",       "The sun was",          "Sara liked to",                 "There was a cat named",
    "Mom said",                 "In the garden, a tiny", "Tim wanted to play",           "The fish swam",
};

// Reference: the same request alone through the single-sequence generator.
std::vector<int32_t> soloTokens(wb::LlamaModel& m, const std::string& prompt, int64_t maxTokens) {
    wb::GenerateOptions g;
    g.maxNewTokens = maxTokens;
    auto r = wb::generate(m, m.tokenizer().encode(prompt, true, wb::SpecialTokens::Plain), g);
    return r ? r->tokens : std::vector<int32_t>{};
}

void checkWellFormed(const Collected& c) {
    QVERIFY(!c.events.empty());
    int terminals = 0;
    for (size_t i = 0; i < c.events.size(); ++i) {
        const bool term = c.events[i].type == wb::EventType::Finished || c.events[i].type == wb::EventType::Error;
        terminals += term;
        if (term) QCOMPARE(i, c.events.size() - 1);
    }
    QCOMPARE(terminals, 1);
}

}  // namespace

class TestModelEngine : public QObject {
    Q_OBJECT

private slots:
    void init() { WB_REQUIRE_FIXTURE(kGguf); }

    void concurrentEqualsSequential() {
        wb::LoadOptions lo;
        lo.numThreads = 2;
        auto solo = wb::LlamaModel::load(wbtest::fixture(kGguf), lo);
        QVERIFY(solo.ok());
        auto engine = makeEngine();
        QVERIFY(engine);
        Collector col;
        std::vector<wb::RequestId> ids;
        for (size_t i = 0; i < kPrompts.size(); ++i) {
            wb::Request r;
            r.prompt = kPrompts[i];
            r.maxTokens = 24 + int64_t(i) * 3;  // different lengths: sequences leave the batch at different steps
            ids.push_back(engine->submit(r, col.sink()));
        }
        for (size_t i = 0; i < ids.size(); ++i) {
            QVERIFY(col.waitTerminal(ids[i]));
            const Collected c = col.get(ids[i]);
            checkWellFormed(c);
            QCOMPARE(int(c.events.back().type), int(wb::EventType::Finished));
            const auto want = soloTokens(**solo, kPrompts[i], 24 + int64_t(i) * 3);
            QCOMPARE(c.events.back().tokens, want);
            // The streamed text is the detokenized tokens, in order.
            std::string text;
            for (const auto& e : c.events)
                if (e.type == wb::EventType::TextDelta) text += e.text;
            std::string expect;
            for (int32_t t : want) expect += (*solo)->tokenizer().tokenBytes(t);
            QCOMPARE(text, expect);
        }
        engine->waitIdle();
        const auto st = engine->stats();
        QCOMPARE(st.kvBlocksUsed, int64_t(0));
        bool sawBatch = false;
        for (const auto& s : st.recentSteps) sawBatch |= s.batchSize > 1;
        QVERIFY2(sawBatch, "no step ever batched more than one sequence");
    }

    void cancelFreesBlocks() {
        auto engine = makeEngine();
        QVERIFY(engine);
        Collector col;
        wb::Request r;
        r.prompt = "Once upon a time";
        r.maxTokens = 1500;
        r.ignoreEos = true;
        const auto id = engine->submit(r, col.sink());
        QVERIFY(col.waitAnyText(id));
        QTRY_VERIFY_WITH_TIMEOUT(engine->stats().kvBlocksUsed > 0, 5000);
        QVERIFY(engine->cancel(id));
        QVERIFY(col.waitTerminal(id));
        const Collected c = col.get(id);
        checkWellFormed(c);
        QCOMPARE(int(c.events.back().reason), int(wb::StopReason::Cancelled));
        QVERIFY(c.events.back().usage.completionTokens < 1500);
        engine->waitIdle();
        // The loop publishes stats after the step that finished the request.
        QTRY_COMPARE_WITH_TIMEOUT(engine->stats().kvBlocksUsed, int64_t(0), 5000);
        QVERIFY(!engine->cancel(id));
    }

    void preemptionStillGivesRightTokens() {
        wb::LoadOptions lo;
        lo.numThreads = 2;
        auto solo = wb::LlamaModel::load(wbtest::fixture(kGguf), lo);
        QVERIFY(solo.ok());
        // 10 blocks of 16 = 160 token slots for 8 requests of about 70 tokens each: they cannot all fit.
        auto engine = makeEngine(10);
        QVERIFY(engine);
        Collector col;
        std::vector<wb::RequestId> ids;
        for (size_t i = 0; i < 8; ++i) {
            wb::Request r;
            r.prompt = kPrompts[i];
            r.maxTokens = 64;
            r.ignoreEos = true;
            ids.push_back(engine->submit(r, col.sink()));
        }
        for (size_t i = 0; i < ids.size(); ++i) {
            QVERIFY(col.waitTerminal(ids[i]));
            const Collected c = col.get(ids[i]);
            checkWellFormed(c);
            QCOMPARE(int(c.events.back().type), int(wb::EventType::Finished));
            wb::GenerateOptions g;
            g.maxNewTokens = 64;
            g.ignoreEos = true;
            auto want = wb::generate(**solo, (*solo)->tokenizer().encode(kPrompts[i], true, wb::SpecialTokens::Plain), g);
            QVERIFY(want.ok());
            QCOMPARE(c.events.back().tokens, want->tokens);
        }
        engine->waitIdle();
        const auto st = engine->stats();
        QVERIFY2(st.totalPreemptions > 0, "the small pool never forced a preemption");
        QTRY_COMPARE_WITH_TIMEOUT(engine->stats().kvBlocksUsed, int64_t(0), 5000);
    }

    void sixtyFourConcurrentMixedLengths() {
        auto engine = makeEngine(0, 64, 256);
        QVERIFY(engine);
        Collector col;
        std::vector<wb::RequestId> ids;
        std::atomic<bool> stop{false};
        // Stats are read from another thread all along, as the GUI does.
        std::thread reader([&] {
            while (!stop) {
                auto s = engine->stats();
                (void)s;
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
        });
        for (int i = 0; i < 64; ++i) {
            wb::Request r;
            std::string p = kPrompts[size_t(i) % kPrompts.size()];
            for (int k = 0; k < i % 5; ++k) p += " and then they played together";
            r.prompt = p;
            r.maxTokens = 8 + (i * 7) % 50;
            r.sampling.temperature = (i % 3 == 0) ? 0.8f : 0.0f;
            r.sampling.seed = uint64_t(i);
            ids.push_back(engine->submit(r, col.sink()));
        }
        for (auto id : ids) {
            QVERIFY(col.waitTerminal(id));
            const Collected c = col.get(id);
            checkWellFormed(c);
            QCOMPARE(int(c.events.back().type), int(wb::EventType::Finished));
            QVERIFY(c.events.back().usage.completionTokens >= 1);
        }
        engine->waitIdle();
        stop = true;
        reader.join();
        QTRY_COMPARE_WITH_TIMEOUT(engine->stats().kvBlocksUsed, int64_t(0), 5000);
        const auto st = engine->stats();
        QCOMPARE(st.totalFinished, uint64_t(64));
        int maxBatch = 0;
        for (const auto& s : st.recentSteps) maxBatch = std::max(maxBatch, s.batchSize);
        QVERIFY2(maxBatch > 8, qPrintable(QString("largest batch %1").arg(maxBatch)));
    }

    // The FP16 KV cache (--kv-cache-dtype f16): half the bytes for the same blocks, and on stories260K the same
    // greedy tokens as the f32 cache for every prompt, batched (keys and values rounded to FP16 move the logits by
    // ~1e-3 of their spread; no prompt here sits on a near-tie). The context of this model is short: auto is f32.
    void f16KvCacheGivesTheSameTokens() {
        auto f32 = makeEngine(64, 8, 512, wb::KvCacheType::F32);
        auto f16 = makeEngine(64, 8, 512, wb::KvCacheType::F16);
        auto autoType = makeEngine(64, 8, 512, wb::KvCacheType::Auto);
        QVERIFY(f32 && f16 && autoType);
        QCOMPARE(f32->stats().kvCacheType, std::string("f32"));
        QCOMPARE(f16->stats().kvCacheType, std::string("f16"));
        QCOMPARE(autoType->stats().kvCacheType, std::string("f32"));
        QCOMPARE(f16->stats().kvBlocksTotal, int64_t(64));
        QCOMPARE(f16->stats().kvCacheBytes * 2, f32->stats().kvCacheBytes);
        Collector c32, c16;
        std::vector<wb::RequestId> a, b;
        for (size_t i = 0; i < 8; ++i) {
            wb::Request r;
            r.prompt = kPrompts[i];
            r.maxTokens = 40;
            r.ignoreEos = true;
            a.push_back(f32->submit(r, c32.sink()));
            b.push_back(f16->submit(r, c16.sink()));
        }
        for (size_t i = 0; i < a.size(); ++i) {
            QVERIFY(c32.waitTerminal(a[i]) && c16.waitTerminal(b[i]));
            const auto x = c32.get(a[i]).events.back(), y = c16.get(b[i]).events.back();
            QCOMPARE(int(y.type), int(wb::EventType::Finished));
            QCOMPARE(y.tokens.size(), size_t(40));
            QCOMPARE(y.tokens, x.tokens);
        }
        QVERIFY(!wb::parseKvCacheType("bf8").ok());
        auto parsed = wb::parseKvCacheType("f16");
        QVERIFY(parsed.ok());
        QCOMPARE(int(*parsed), int(wb::KvCacheType::F16));
    }

    void requestsThatCanNeverFitFailAtOnce() {
        auto engine = makeEngine(4);  // 64 token slots
        QVERIFY(engine);
        Collector col;
        wb::Request r;
        r.prompt = "Once upon a time";
        r.maxTokens = 100;
        const auto id = engine->submit(r, col.sink());
        QVERIFY(col.waitTerminal(id, 5000));
        const Collected c = col.get(id);
        checkWellFormed(c);
        QCOMPARE(int(c.events.back().type), int(wb::EventType::Error));
        QVERIFY2(c.events.back().text.find("KV cache") != std::string::npos, c.events.back().text.c_str());

        wb::Request big;
        big.promptTokens.assign(3000, 1);
        big.maxTokens = 1;
        const auto id2 = engine->submit(big, col.sink());
        QVERIFY(col.waitTerminal(id2, 5000));
        QVERIFY2(col.get(id2).events.back().text.find("maximum model length") != std::string::npos,
                 col.get(id2).events.back().text.c_str());

        // The engine keeps serving afterwards.
        wb::Request ok;
        ok.prompt = "Once upon a time";
        ok.maxTokens = 10;
        const auto id3 = engine->submit(ok, col.sink());
        QVERIFY(col.waitTerminal(id3));
        QCOMPARE(int(col.get(id3).events.back().type), int(wb::EventType::Finished));
    }

    void stopStringsAndTimings() {
        auto engine = makeEngine();
        QVERIFY(engine);
        Collector col;
        wb::Request r;
        r.prompt = "Once upon a time";
        r.maxTokens = 60;
        r.stop = {"Lily"};
        const auto id = engine->submit(r, col.sink());
        QVERIFY(col.waitTerminal(id));
        const Collected c = col.get(id);
        std::string text;
        for (const auto& e : c.events)
            if (e.type == wb::EventType::TextDelta) text += e.text;
        QCOMPARE(text, std::string(", there was a little girl named "));
        const auto& fin = c.events.back();
        QCOMPARE(int(fin.reason), int(wb::StopReason::Stop));
        QVERIFY(fin.timings.ttftMs > 0);
        QVERIFY(fin.timings.e2eMs >= fin.timings.ttftMs);
        QCOMPARE(int64_t(fin.timings.interTokenMs.size()), fin.usage.completionTokens - 1);
    }

    void sharedPrefixIsReused() {
        wb::LoadOptions lo;
        lo.numThreads = 2;
        auto solo = wb::LlamaModel::load(wbtest::fixture(kGguf), lo);
        QVERIFY(solo.ok());
        const wb::Tokenizer& tok = (*solo)->tokenizer();
        // A long shared "system prompt", then different questions: the agent's traffic pattern.
        std::vector<int32_t> prefix = tok.encode(
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball. She ran to get it and kicked it very high. The ball went over the fence and "
            "into the garden of an old man.", true, wb::SpecialTokens::Plain);
        QVERIFY(prefix.size() > 40);
        auto withSuffix = [&](const std::string& text) {
            auto ids = prefix;
            const auto more = tok.encode(text, false, wb::SpecialTokens::Plain);
            ids.insert(ids.end(), more.begin(), more.end());
            return ids;
        };
        const std::vector<std::vector<int32_t>> prompts = {withSuffix(" Lily was sad."), withSuffix(" The man smiled."),
                                                           withSuffix(" Lily was sad.")};
        const int64_t bs = 16;
        for (bool caching : {true, false}) {
            wb::EngineOptions o;
            o.modelPath = wbtest::fixture(kGguf);
            o.load.numThreads = 2;
            o.kvCacheBytes = int64_t(64) << 20;
            o.prefixCaching = caching;
            auto engine = wb::Engine::create(o);
            QVERIFY(engine.ok());
            Collector col;
            for (size_t i = 0; i < prompts.size(); ++i) {
                wb::Request r;
                r.promptTokens = prompts[i];
                r.maxTokens = 24;
                r.ignoreEos = true;
                const auto id = (*engine)->submit(r, col.sink());
                QVERIFY(col.waitTerminal(id));
                const auto fin = col.get(id).events.back();
                QCOMPARE(int(fin.type), int(wb::EventType::Finished));
                // The same tokens as a lone run without any cache.
                wb::GenerateOptions g;
                g.maxNewTokens = 24;
                g.ignoreEos = true;
                auto want = wb::generate(**solo, prompts[i], g);
                QVERIFY(want.ok());
                QCOMPARE(fin.tokens, want->tokens);
                int64_t expectCached = 0;
                if (caching && i == 1) expectCached = int64_t(prefix.size()) / bs * bs;  // whole shared blocks
                if (caching && i == 2) expectCached = (int64_t(prompts[2].size()) - 1) / bs * bs;  // all but the last
                qInfo("caching %d request %zu: prompt %zu, cached %lld", int(caching), i, prompts[i].size(), (long long)fin.usage.cachedPromptTokens);
                QCOMPARE(fin.usage.cachedPromptTokens, expectCached);
            }
            (*engine)->waitIdle();
            QTRY_COMPARE_WITH_TIMEOUT((*engine)->stats().kvBlocksUsed, int64_t(0), 5000);
        }
    }

    void destroyingWhileBusyCancels() {
        Collector col;
        wb::RequestId id;
        {
            auto engine = makeEngine();
            QVERIFY(engine);
            wb::Request r;
            r.prompt = "Once upon a time";
            r.maxTokens = 1500;
            r.ignoreEos = true;
            id = engine->submit(r, col.sink());
            QVERIFY(col.waitAnyText(id));
        }
        const Collected c = col.get(id);
        checkWellFormed(c);
        QCOMPARE(int(c.events.back().reason), int(wb::StopReason::Cancelled));
    }
};

QTEST_GUILESS_MAIN(TestModelEngine)
#include "tst_model_engine.moc"
