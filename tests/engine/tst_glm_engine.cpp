// GLM-4.1V through the engine (the path the server, the CLI and the GUI take): a chat request whose user message
// holds image parts is rendered with the checkpoint's template, its images decoded, resized, encoded by the vision
// tower and placed at the image tokens with their 3-D rotary positions, then scheduled like any other request.
// Checked on a tiny random checkpoint written here: the engine's tokens equal a direct GlmModel prefill + greedy
// decode of the same prompt; batched = alone; preemption recomputes from cached features; the prefix cache tells
// images apart; typed markers stay text; bad images, unreadable image files and images for text-only
// models are clear errors; an image named by its file is read by the engine.
#include <QtTest>

#include <chrono>
#include <cstdio>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "api/direct_model.h"
#include "api/engine.h"
#include "fixtures.h"
#include "test_images.h"
#include "models/glm/glm_model.h"
#include "models/glm/glm_prompt.h"
#include "models/glm/glm_tiny.h"
#include "media/glm4v_image_processor.h"
#include "media/image.h"

using namespace wb;

namespace {

class Collector {
public:
    EventSink sink() {
        return [this](const Event& e) {
            std::lock_guard lock(m_mutex);
            m_events[e.id].push_back(e);
            m_cv.notify_all();
        };
    }
    std::vector<Event> wait(RequestId id) {
        std::unique_lock lock(m_mutex);
        m_cv.wait_for(lock, std::chrono::seconds(120), [&] {
            const auto& v = m_events[id];
            return !v.empty() && (v.back().type == EventType::Finished || v.back().type == EventType::Error);
        });
        return m_events[id];
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::map<RequestId, std::vector<Event>> m_events;
};

using wbtest::procedural;

std::vector<uint8_t> png(int w, int h, int variant) {
    auto r = encodePng(procedural(w, h, variant));
    return r ? *r : std::vector<uint8_t>{};
}

Request imageQuestion(std::vector<std::vector<uint8_t>> images, const std::string& question, int64_t maxTokens = 12) {
    Request r;
    ChatMessage m;
    m.role = "user";
    for (auto& b : images) m.parts.push_back(ContentPart::makeImage(std::move(b)));
    m.parts.push_back(ContentPart::makeText(question));
    r.messages.push_back(std::move(m));
    r.maxTokens = maxTokens;
    r.ignoreEos = true;
    r.sampling.temperature = 0;
    return r;
}

// What the engine feeds GlmModel for one user message (an image, then the question): the template's output
// [gMASK]<sop><|user|>\n <image> text <|assistant|>\n, tokenized with the image's grid, and the image's features.
Result<std::pair<GlmPrompt, std::vector<float>>> directImagePrompt(GlmModel& model, const std::vector<uint8_t>& png,
                                                                  const std::string& question) {
    auto img = decodeImage(png, "png");
    if (!img) return img.error();
    auto in = glm4vPreprocess(*img, model.processorConfig());
    if (!in) return in.error();
    auto feats = model.encodeImage(*in);
    if (!feats) return feats.error();
    const std::vector<GlmPromptPart> parts = {{GlmPromptPart::Kind::Template, "[gMASK]<sop><|user|>\n", -1},
                                              {GlmPromptPart::Kind::Image, "", 0},
                                              {GlmPromptPart::Kind::Text, question, -1},
                                              {GlmPromptPart::Kind::Template, "<|assistant|>\n", -1}};
    auto p = buildGlmPrompt(model.tokenizer(), model.config(), parts, {{in->gridT, in->gridH, in->gridW}});
    if (!p) return p.error();
    return std::make_pair(std::move(*p), std::move(*feats));
}

struct Outcome {
    std::vector<int32_t> tokens;
    std::string text, reasoning, error;
    Usage usage;
    bool ok = false;
};

Outcome summarize(const std::vector<Event>& events) {
    Outcome o;
    for (const Event& e : events) {
        if (e.type == EventType::TextDelta) o.text += e.text;
        if (e.type == EventType::ReasoningDelta) o.reasoning += e.text;
        if (e.type == EventType::Error) o.error = e.text;
        if (e.type == EventType::Finished) {
            o.ok = true;
            o.tokens = e.tokens;
            o.usage = e.usage;
        }
    }
    return o;
}

}  // namespace

class TestGlmEngine : public QObject {
    Q_OBJECT

    std::string m_vision, m_text;
    Collector m_longLived;  // for tests whose engine is created before their requests' collector

    std::unique_ptr<Engine> makeEngine(const std::string& path, int64_t numBlocks = 0, int64_t budget = 512) {
        EngineOptions o;
        o.modelPath = path;
        o.load.numThreads = 2;
        o.numKvBlocks = numBlocks;
        o.kvCacheBytes = int64_t(16) << 20;
        o.maxBatchTokens = budget;
        auto e = Engine::create(o);
        if (!e) qWarning("engine: %s", e.error().message.c_str());
        return e ? std::move(*e) : nullptr;
    }

    Outcome run(Engine& e, Request r) {
        Collector c;
        const RequestId id = e.submit(std::move(r), c.sink());
        std::vector<Event> ev = c.wait(id);
        if (ev.empty() || (ev.back().type != EventType::Finished && ev.back().type != EventType::Error)) {
            e.cancel(id);  // timed out: end it before the collector goes away
            ev = c.wait(id);
        }
        return summarize(ev);
    }

private slots:
    void initTestCase() {
        m_vision = wbtest::tempDir() + "/glm-engine/glm4v";
        m_text = wbtest::tempDir() + "/glm-engine/glm4";
        QVERIFY(writeTinyGlmCheckpoint(m_vision).ok());
        TinyGlmOptions t;
        t.vision = false;
        QVERIFY(writeTinyGlmCheckpoint(m_text, t).ok());
    }

    void loadsAndAcceptsImages() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        QVERIFY(e->acceptsImages());
        QCOMPARE(e->modelConfig().architecture, std::string("glm4v"));
        QVERIFY(e->stats().weightBytes > 0);
        auto t = makeEngine(m_text);
        QVERIFY(t);
        QVERIFY(!t->acceptsImages());
    }

    // The engine's greedy tokens = GlmModel driven by hand on the same ids, positions and features.
    void engineEqualsDirectModel() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        const auto bytes = png(84, 56, 0);
        Outcome o = run(*e, imageQuestion({bytes}, "What is it?", 10));
        QVERIFY2(o.ok, o.error.c_str());
        QCOMPARE(int64_t(o.tokens.size()), int64_t(10));

        auto m = GlmModel::load(m_vision);
        QVERIFY(m.ok());
        GlmModel& model = **m;
        auto direct = directImagePrompt(model, bytes, "What is it?");
        QVERIFY2(direct.ok(), direct.ok() ? "" : direct.error().message.c_str());
        const GlmPrompt* p = &direct->first;
        const std::vector<float>* feats = &direct->second;
        QCOMPARE(o.usage.promptTokens, int64_t(p->ids.size()));
        const int64_t V = model.config().text.vocabSize, n = int64_t(p->ids.size());
        KvBlockPool pool(model.config().text.numLayers, model.kvDim(), 16, 8);
        BlockTable table;
        for (int i = 0; i < 8; ++i) table.blocks.push_back(*pool.allocate());
        std::vector<float> logits(static_cast<size_t>(V));
        GlmSequenceStep st;
        st.tokens = p->ids;
        st.positions = p->positions;
        st.imageFeatures = *feats;
        st.blocks = &table;
        QVERIFY(model.forward(std::span<const GlmSequenceStep>(&st, 1), pool, logits.data()).ok());
        std::vector<int32_t> want;
        for (int step = 0; step < 10; ++step) {
            for (int32_t banned : {kTinyGlmImage, kTinyGlmBeginImage, kTinyGlmEndImage, kTinyGlmBeginVideo,
                                   kTinyGlmEndVideo})
                logits[size_t(banned)] = -INFINITY;
            const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
            want.push_back(next);
            GlmSequenceStep d;
            d.tokens = std::span<const int32_t>(&want.back(), 1);
            d.startIndex = n + step;
            d.positionOffset = p->ropeDelta;
            d.blocks = &table;
            QVERIFY(model.forward(std::span<const GlmSequenceStep>(&d, 1), pool, logits.data()).ok());
        }
        QCOMPARE(o.tokens, want);
    }

    // `wb bench`'s single-sequence path (DirectModel) on a GLM model: a prompt and decode steps give GlmModel's
    // own logits, bit for bit, through the engine-model adapter; generate() is refused with the commands to use.
    void directModelRunsGlmForward() {
        for (const std::string& dir : {m_text, m_vision}) {
            LoadOptions lo;
            lo.numThreads = 1;
            auto d = DirectModel::load(dir, lo);
            QVERIFY2(d.ok(), d.ok() ? "" : d.error().message.c_str());
            DirectModel& dm = **d;
            QVERIFY(!dm.canGenerate());
            auto g = dm.generate({1, 2, 3}, GenerateOptions{});
            QVERIFY(!g.ok());
            QVERIFY2(g.error().message.find("wb chat") != std::string::npos, g.error().message.c_str());
            QVERIFY(!dm.forward(std::vector<int32_t>{1}, 0, nullptr).ok());  // no cache yet: an error, no crash

            GlmLoadOptions go;
            go.numThreads = 1;
            auto m = GlmModel::load(dir, go);
            QVERIFY(m.ok());
            GlmModel& model = **m;
            const int64_t V = model.config().text.vocabSize;
            QCOMPARE(dm.config().vocabSize, V);
            const std::vector<int32_t> prompt = {5, 17, 42, 8, 99, 3, 64, 21, 7};
            dm.resetCache(32);
            std::vector<float> got(static_cast<size_t>(V)), want(static_cast<size_t>(V));
            QVERIFY(dm.forward(prompt, 0, got.data()).ok());
            KvBlockPool pool(model.config().text.numLayers, model.kvDim(), 16, 2);
            BlockTable table;
            for (int i = 0; i < 2; ++i) table.blocks.push_back(*pool.allocate());
            GlmSequenceStep st;
            st.tokens = prompt;
            st.blocks = &table;
            QVERIFY(model.forward(std::span<const GlmSequenceStep>(&st, 1), pool, want.data()).ok());
            // The engine model of a vision checkpoint never lets the image placeholders be generated (their logits
            // are -inf), the rest is GlmModel's row.
            auto banned = [&](std::vector<float>& row) {
                if (dir == m_vision)
                    for (int32_t b : {kTinyGlmImage, kTinyGlmBeginImage, kTinyGlmEndImage, kTinyGlmBeginVideo,
                                      kTinyGlmEndVideo})
                        row[size_t(b)] = -INFINITY;
            };
            banned(want);
            QCOMPARE(got, want);
            for (int step = 0; step < 3; ++step) {
                const int32_t next = int32_t(std::max_element(want.begin(), want.end()) - want.begin());
                QVERIFY(dm.forward(std::span<const int32_t>(&next, 1), int64_t(prompt.size()) + step, got.data()).ok());
                GlmSequenceStep dstep;
                dstep.tokens = std::span<const int32_t>(&next, 1);
                dstep.startIndex = int64_t(prompt.size()) + step;
                dstep.blocks = &table;
                QVERIFY(model.forward(std::span<const GlmSequenceStep>(&dstep, 1), pool, want.data()).ok());
                banned(want);
                QCOMPARE(got, want);
            }
            QVERIFY(!dm.forward(prompt, 30, got.data()).ok());  // past the cache: an error naming it
        }
    }

    // The FP16 KV cache on GLM-4.1V (the model whose long context it is for): an image prompt (prefill through
    // the causal tiles, then decode steps through the paged kernel, the same tokens fed to both) gives logits within
    // 1% of each row's spread of the f32 cache's, at f32 weights and at BF16 (whose prefill attention is fused on
    // AMX tiles where the CPU has them).
    void f16KvCacheMatchesF32() {
        for (DType wt : {DType::F32, DType::BF16}) {
            GlmLoadOptions lo;
            lo.numThreads = 2;
            lo.weightType = wt;
            auto m = GlmModel::load(m_vision, lo);
            QVERIFY(m.ok());
            GlmModel& model = **m;
            auto direct = directImagePrompt(model, png(112, 84, 5), "What is in this picture?");
            QVERIFY2(direct.ok(), direct.ok() ? "" : direct.error().message.c_str());
            const GlmPrompt* p = &direct->first;
            const std::vector<float>* feats = &direct->second;
            const int64_t V = model.config().text.vocabSize, n = int64_t(p->ids.size());
            QVERIFY2(n >= 32, "the prompt should take the causal tile path");
            KvBlockPool pool32(model.config().text.numLayers, model.kvDim(), 16, 16, KvStorage::Host, DType::F32);
            KvBlockPool pool16(model.config().text.numLayers, model.kvDim(), 16, 16, KvStorage::Host, DType::F16);
            QCOMPARE(pool16.dtype(), DType::F16);
            BlockTable t32, t16;
            for (int i = 0; i < 16; ++i) t32.blocks.push_back(*pool32.allocate()), t16.blocks.push_back(*pool16.allocate());
            std::vector<float> l32(static_cast<size_t>(V)), l16(static_cast<size_t>(V));
            GlmSequenceStep st;
            st.tokens = p->ids;
            st.positions = p->positions;
            st.imageFeatures = *feats;
            st.blocks = &t32;
            QVERIFY(model.forward(std::span<const GlmSequenceStep>(&st, 1), pool32, l32.data()).ok());
            st.blocks = &t16;
            QVERIFY(model.forward(std::span<const GlmSequenceStep>(&st, 1), pool16, l16.data()).ok());
            double worst = 0;
            std::vector<int32_t> fed;
            for (int step = 0; step <= 12; ++step) {
                const auto [lo32, hi32] = std::minmax_element(l32.begin(), l32.end());
                double diff = 0;
                for (size_t i = 0; i < l32.size(); ++i) diff = std::max(diff, double(std::fabs(l32[i] - l16[i])));
                worst = std::max(worst, diff / double(*hi32 - *lo32));
                if (step == 12) break;
                fed.push_back(int32_t(std::max_element(l32.begin(), l32.end()) - l32.begin()));
                GlmSequenceStep d;
                d.tokens = std::span<const int32_t>(&fed.back(), 1);
                d.startIndex = n + step;
                d.positionOffset = p->ropeDelta;
                d.blocks = &t32;
                QVERIFY(model.forward(std::span<const GlmSequenceStep>(&d, 1), pool32, l32.data()).ok());
                d.blocks = &t16;
                QVERIFY(model.forward(std::span<const GlmSequenceStep>(&d, 1), pool16, l16.data()).ok());
            }
            qInfo("%s weights: f16 KV cache, worst |logit diff| / spread over prefill + 12 decodes: %.2e",
                  std::string(dtypeName(wt)).c_str(), worst);
            QVERIFY2(worst < 0.01, qPrintable(QString("worst %1").arg(worst)));
            QVERIFY2(worst > 0, "the f16 cache should round something");
        }
    }

    // Several image requests (two images in one, different aspect ratios) and a text one in the same steps,
    // in small prefill chunks, give the tokens each gets alone; a tiny KV pool forces preemption, and the
    // recomputed prompts (from the cached features) give the same tokens again.
    void batchedChunkedPreemptedEqualsAlone() {
        std::vector<Request> reqs;
        reqs.push_back(imageQuestion({png(84, 56, 1)}, "Describe.", 40));
        reqs.push_back(imageQuestion({png(56, 112, 2), png(140, 84, 3)}, "Compare the two.", 40));
        Request text;
        text.messages.push_back({"user", "Hello there", {}});
        text.maxTokens = 40;
        text.ignoreEos = true;
        text.sampling.temperature = 0;
        reqs.push_back(text);
        std::vector<Outcome> alone;
        {
            auto e = makeEngine(m_vision);
            QVERIFY(e);
            for (const Request& r : reqs) {
                alone.push_back(run(*e, r));
                QVERIFY2(alone.back().ok, alone.back().error.c_str());
            }
        }
        QVERIFY(alone[1].usage.promptTokens > alone[0].usage.promptTokens);
        // 7 blocks of 16 hold the largest request alone (65 prompt + 40 tokens) but not two of them: while any two
        // run, one is preempted.
        for (int64_t blocks : {int64_t(0), int64_t(7)}) {
            Collector c;  // outlives the engine
            auto e = makeEngine(m_vision, blocks, 7);
            QVERIFY(e);
            std::vector<RequestId> ids;
            // All three start in the same step: held until the image requests are prepared and waiting.
            e->holdScheduling(true);
            for (const Request& r : reqs) ids.push_back(e->submit(r, c.sink()));
            QTRY_VERIFY_WITH_TIMEOUT(e->stats().numWaiting == 3 && e->stats().numPreparing == 0, 30000);
            e->holdScheduling(false);
            for (size_t i = 0; i < ids.size(); ++i) {
                Outcome o = summarize(c.wait(ids[i]));
                QVERIFY2(o.ok, o.error.c_str());
                QCOMPARE(o.tokens, alone[i].tokens);
            }
            if (blocks > 0) QVERIFY2(e->stats().totalPreemptions > 0, "the small pool should have preempted");
        }
    }

    // The prefix cache keys image tokens by image content: another image is never served from the cache,
    // the same image is.
    void prefixCacheTellsImagesApart() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        // A long shared text before the image so that whole blocks precede it.
        const std::string sys(40, 'x');
        auto withSystem = [&](std::vector<uint8_t> image) {
            Request r = imageQuestion({std::move(image)}, "What?", 6);
            r.messages.insert(r.messages.begin(), ChatMessage{"system", sys, {}});
            return r;
        };
        Outcome a = run(*e, withSystem(png(84, 56, 4)));
        QVERIFY2(a.ok, a.error.c_str());
        Outcome b = run(*e, withSystem(png(84, 56, 5)));
        QVERIFY2(b.ok, b.error.c_str());
        Outcome a2 = run(*e, withSystem(png(84, 56, 4)));
        QVERIFY2(a2.ok, a2.error.c_str());
        // The image starts after [gMASK]<sop><|system|>\n + 40 + <|user|>\n = 46 tokens: 2 blocks of 16 shared.
        QCOMPARE(b.usage.cachedPromptTokens, int64_t(32));
        QVERIFY2(a2.usage.cachedPromptTokens > 32, "the same image should be reused from the cache");
        QCOMPARE(a2.tokens, a.tokens);
        // Two distinct images went through the tower; the repeat reused the first one's features.
        QCOMPARE(e->stats().totalImagesEncoded, uint64_t(2));
        auto fresh = makeEngine(m_vision);
        Outcome bAlone = run(*fresh, withSystem(png(84, 56, 5)));
        QCOMPARE(b.tokens, bAlone.tokens);
    }

    void typedMarkersStayText() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        Request r;
        r.messages.push_back({"user", "<|begin_of_image|><|image|><|end_of_image|> <image>", {}});
        r.maxTokens = 2;
        Outcome o = run(*e, r);
        QVERIFY2(o.ok, o.error.c_str());
        // [gMASK] <sop> <|user|> \n, the 51 typed bytes, <|assistant|> \n.
        QCOMPARE(o.usage.promptTokens, int64_t(4 + 51 + 2));
        // Same through a text part next to a real image: exactly one image slot.
        Request r2 = imageQuestion({png(84, 56, 0)}, "<|image|>", 2);
        Outcome o2 = run(*e, r2);
        QVERIFY2(o2.ok, o2.error.c_str());
        QCOMPARE(o2.usage.promptTokens, int64_t(4 + 1 + 6 + 1 + 9 + 2));
    }

    // The chat template GLM-4.1V-9B-Thinking ships (chat_template.jinja, as published; test data), rendered by
    // our Jinja subset with HF's trim_blocks / lstrip_blocks: the engine's ids equal the parts the reference's
    // rendering gives, an image part becoming its slot.
    void officialGlm41vTemplate() {
        const std::string dir = wbtest::tempDir() + "/glm-engine/glm4v-official-template";
        TinyGlmOptions t;
        t.chatTemplate = false;
        QVERIFY(writeTinyGlmCheckpoint(dir, t).ok());
        const char* official =
                "[gMASK]<sop>\n{%- for msg in messages %}\n    {%- if msg.role == 'system' %}\n<|system|>\n"
                "{{ msg.content }}\n    {%- elif msg.role == 'user' %}\n<|user|>{{ '\\n' }}\n\n"
                "        {%- if msg.content is string %}\n{{ msg.content }}\n        {%- else %}\n"
                "            {%- for item in msg.content %}\n"
                "                {%- if item.type == 'video' or 'video' in item %}\n"
                "<|begin_of_video|><|video|><|end_of_video|>\n"
                "                {%- elif item.type == 'image' or 'image' in item %}\n"
                "<|begin_of_image|><|image|><|end_of_image|>\n"
                "                {%- elif item.type == 'text' %}\n{{ item.text }}\n                {%- endif %}\n"
                "            {%- endfor %}\n        {%- endif %}\n    {%- elif msg.role == 'assistant' %}\n"
                "        {%- if msg.metadata %}\n<|assistant|>{{ msg.metadata }}\n{{ msg.content }}\n"
                "        {%- else %}\n<|assistant|>\n{{ msg.content }}\n        {%- endif %}\n    {%- endif %}\n"
                "{%- endfor %}\n{% if add_generation_prompt %}<|assistant|>\n{% endif %}";
        std::ofstream(dir + "/chat_template.jinja") << official;
        EngineOptions o;
        o.modelPath = dir;
        o.load.numThreads = 2;
        o.kvCacheBytes = int64_t(16) << 20;
        auto e = Engine::create(o);
        QVERIFY2(e.ok(), e.ok() ? "" : e.error().message.c_str());
        Request r = imageQuestion({png(84, 56, 0)}, "What is it?", 2);
        r.messages.insert(r.messages.begin(), ChatMessage{"system", "Be brief.", {}});
        r.messages.push_back({"assistant", "A pattern.", {}});
        r.messages.push_back({"user", "And the colours?", {}});
        auto ids = (*e)->promptTokens(r);
        QVERIFY2(ids.ok(), ids.ok() ? "" : ids.error().message.c_str());

        auto m = GlmModel::load(dir);
        QVERIFY(m.ok());
        std::vector<GlmPromptPart> parts = {{GlmPromptPart::Kind::Template, "[gMASK]<sop><|system|>\n", -1},
                                            {GlmPromptPart::Kind::Text, "Be brief.", -1},
                                            {GlmPromptPart::Kind::Template, "<|user|>\n", -1},
                                            {GlmPromptPart::Kind::Image, "", 0},
                                            {GlmPromptPart::Kind::Text, "What is it?", -1},
                                            {GlmPromptPart::Kind::Template, "<|assistant|>\n", -1},
                                            {GlmPromptPart::Kind::Text, "A pattern.", -1},
                                            {GlmPromptPart::Kind::Template, "<|user|>\n", -1},
                                            {GlmPromptPart::Kind::Text, "And the colours?", -1},
                                            {GlmPromptPart::Kind::Template, "<|assistant|>\n", -1}};
        auto want = buildGlmPrompt((*m)->tokenizer(), (*m)->config(), parts, {{1, 4, 6}});
        QVERIFY(want.ok());
        QCOMPARE(*ids, want->ids);
        Outcome out = run(**e, r);
        QVERIFY2(out.ok, out.error.c_str());
    }

    void thinkingOffAddsEmptyThink() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        Request on = imageQuestion({png(84, 56, 0)}, "Hi", 2);
        Request off = on;
        off.enableThinking = false;
        Outcome a = run(*e, on), b = run(*e, off);
        QVERIFY(a.ok && b.ok);
        QCOMPARE(b.usage.promptTokens, a.usage.promptTokens + 2);  // <think></think>
    }

    void errorsAreClear() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        std::vector<uint8_t> corrupt = png(84, 56, 0);
        corrupt.resize(corrupt.size() / 2);
        Outcome o = run(*e, imageQuestion({png(84, 56, 0), corrupt}, "?"));
        QVERIFY(!o.ok);
        QVERIFY2(o.error.find("image 2") != std::string::npos, o.error.c_str());
        Outcome junk = run(*e, imageQuestion({std::vector<uint8_t>{'n', 'o', 'p', 'e'}}, "?"));
        QVERIFY(!junk.ok);
        QVERIFY2(junk.error.find("image 1") != std::string::npos, junk.error.c_str());
        // Prompt ids with an image slot but no image.
        Request ids;
        ids.promptTokens = {kTinyGlmGmask, kTinyGlmBeginImage, kTinyGlmImage, kTinyGlmEndImage};
        Outcome bad = run(*e, ids);
        QVERIFY(!bad.ok);
        QVERIFY2(bad.error.find("no image") != std::string::npos, bad.error.c_str());
        // The engine still serves after the failures.
        QVERIFY(run(*e, imageQuestion({png(84, 56, 0)}, "ok?", 2)).ok);

        auto t = makeEngine(m_text);
        QVERIFY(t);
        Outcome noVision = run(*t, imageQuestion({png(84, 56, 0)}, "?"));
        QVERIFY(!noVision.ok);
        QVERIFY2(noVision.error.find("no vision tower") != std::string::npos, noVision.error.c_str());
        Request plain;
        plain.messages.push_back({"user", "Hello", {}});
        plain.maxTokens = 3;
        QVERIFY(run(*t, plain).ok);
    }

    // An image part may name a file instead of holding its bytes (the GUI's route: its thread never reads them).
    // The engine reads it on the preparation thread, before the caches, which key by content: the same image by
    // bytes and by file is one image (the tower runs once, the prefix cache serves the repeat, the tokens are the
    // same). A file that is missing, a directory, empty or not PNG/JPEG ends the request with its path named.
    void imageFilesAreReadByTheEngine() {
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        const std::string dir = wbtest::tempDir() + "/glm-engine/files";
        std::filesystem::create_directories(dir);
        const std::vector<uint8_t> bytes = png(84, 56, 6);
        const std::string file = dir + "/shot.png";
        {
            std::ofstream f(file, std::ios::binary);
            f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        }
        auto byFile = [&](const std::string& path, int64_t maxTokens = 8) {
            Request r = imageQuestion({}, "What is it?", maxTokens);
            r.messages[0].parts.insert(r.messages[0].parts.begin(), ContentPart::makeImageFile(path));
            return r;
        };
        QVERIFY(byFile(file).messages[0].hasImages());
        auto counted = e->promptTokens(byFile(file));
        QVERIFY2(counted.ok(), counted.ok() ? "" : counted.error().message.c_str());

        const uint64_t encodedBefore = e->stats().totalImagesEncoded;
        Outcome viaBytes = run(*e, imageQuestion({bytes}, "What is it?", 8));
        QVERIFY2(viaBytes.ok, viaBytes.error.c_str());
        Outcome viaFile = run(*e, byFile(file));
        QVERIFY2(viaFile.ok, viaFile.error.c_str());
        QCOMPARE(viaFile.tokens, viaBytes.tokens);
        QCOMPARE(viaFile.usage.promptTokens, viaBytes.usage.promptTokens);
        QCOMPARE(int64_t(counted->size()), viaFile.usage.promptTokens);
        QCOMPARE(e->stats().totalImagesEncoded, encodedBefore + 1);  // one image, whichever way it came
        QVERIFY2(viaFile.usage.cachedPromptTokens > 0, "the same image by file should be served from the cache");
        // A fresh engine given only the file answers the same (nothing borrowed from the bytes request).
        auto fresh = makeEngine(m_vision);
        QVERIFY(fresh);
        Outcome fileAlone = run(*fresh, byFile(file));
        QVERIFY2(fileAlone.ok, fileAlone.error.c_str());
        QCOMPARE(fileAlone.tokens, viaBytes.tokens);

        const std::string missing = dir + "/no-such-screenshot.png";
        Outcome gone = run(*e, byFile(missing));
        QVERIFY(!gone.ok);
        QVERIFY2(gone.error.find(missing) != std::string::npos && gone.error.find("cannot read") != std::string::npos,
                 gone.error.c_str());
        QVERIFY(!e->promptTokens(byFile(missing)).ok());
        Outcome directory = run(*e, byFile(dir));
        QVERIFY(!directory.ok);
        QVERIFY2(directory.error.find(dir) != std::string::npos, directory.error.c_str());
        const std::string empty = dir + "/empty.png";
        std::ofstream(empty, std::ios::binary).close();
        Outcome none = run(*e, byFile(empty));
        QVERIFY(!none.ok);
        QVERIFY2(none.error.find(empty) != std::string::npos, none.error.c_str());
        const std::string bmp = dir + "/old.bmp";
        std::ofstream(bmp, std::ios::binary) << "BM not really a bitmap, and neither PNG nor JPEG";
        Outcome notPng = run(*e, byFile(bmp));
        QVERIFY(!notPng.ok);
        QVERIFY2(notPng.error.find(bmp) != std::string::npos &&
                     notPng.error.find("not a PNG or JPEG") != std::string::npos,
                 notPng.error.c_str());
        // The second of two images is the bad one: named by its place and path.
        Request two = byFile(missing);
        two.messages[0].parts.insert(two.messages[0].parts.begin(), ContentPart::makeImage(bytes));
        Outcome second = run(*e, two);
        QVERIFY(!second.ok);
        QVERIFY2(second.error.find(missing) != std::string::npos, second.error.c_str());
        // The engine still serves after the failures.
        QVERIFY(run(*e, byFile(file, 2)).ok);

        // A text-only model refuses the part without touching the file.
        auto t = makeEngine(m_text);
        QVERIFY(t);
        Outcome noVision = run(*t, byFile(missing));
        QVERIFY(!noVision.ok);
        QVERIFY2(noVision.error.find("no vision tower") != std::string::npos, noVision.error.c_str());
    }

    // Images go through the vision tower on the engine's preparation thread: a running text request keeps
    // decoding while a screenshot is encoded (its longest pause is a small part of the encode time).
    void decodingGoesOnWhileAnImageIsEncoded() {
        EngineOptions o;
        o.modelPath = m_vision;
        o.load.numThreads = 2;
        o.kvCacheBytes = int64_t(64) << 20;
        o.maxImagePixels = 5'000'000;
        o.maxBatchTokens = 512;
        auto e = Engine::create(o);
        QVERIFY(e.ok());
        using Clock = std::chrono::steady_clock;
        const auto c0 = Clock::now();
        QVERIFY(run(**e, imageQuestion({png(1080, 2400, 6)}, "Tap", 1)).ok);
        const double imageMs = std::chrono::duration<double, std::milli>(Clock::now() - c0).count();

        Request text;
        text.messages.push_back({"user", "Tell me a long story.", {}});
        text.maxTokens = 7000;
        text.ignoreEos = true;
        text.sampling.temperature = 0;
        Collector& c = m_longLived;
        const RequestId t = (*e)->submit(text, c.sink());
        QTRY_VERIFY_WITH_TIMEOUT((*e)->stats().totalGeneratedTokens > 20, 30000);
        const auto imageAt = Clock::now();
        const RequestId im = (*e)->submit(imageQuestion({png(1080, 2400, 7)}, "Tap", 1), c.sink());
        // While the tower runs, the stats list the request as preparing (read live, whatever the loop does).
        QTRY_VERIFY_WITH_TIMEOUT(
                [&] {
                    const StatsSnapshot st = (*e)->stats();
                    for (const RequestStats& r : st.requests)
                        if (r.id == im && r.state == "preparing") return st.numPreparing == 1;
                    return false;
                }(),
                10000);
        Outcome io = summarize(c.wait(im));
        const double imageDoneMs = std::chrono::duration<double, std::milli>(Clock::now() - imageAt).count();
        QVERIFY2(io.ok, io.error.c_str());
        const std::vector<Event> tev = c.wait(t);
        const double textDoneMs = std::chrono::duration<double, std::milli>(Clock::now() - imageAt).count();
        QVERIFY(tev.back().type == EventType::Finished);
        const auto& gaps = tev.back().timings.interTokenMs;
        const double maxGap = *std::max_element(gaps.begin(), gaps.end());
        qInfo("screenshot alone %.0f ms; with a text stream running: image done after %.0f ms, text after %.0f ms, "
              "text's longest pause %.1f ms over %zu tokens",
              imageMs, imageDoneMs, textDoneMs, maxGap, gaps.size());
        QVERIFY2(textDoneMs > imageDoneMs * 0.5, "the text request should still be running during the encode");
        QVERIFY2(maxGap < imageMs * 0.5, qPrintable(QString("longest pause %1 ms vs %2 ms encode").arg(maxGap).arg(imageMs)));
    }

    // Cancelling image requests while they wait for or go through preparation ends each with exactly one
    // Cancelled event; the engine goes on.
    void cancelWhilePreparing() {
        Collector c;  // declared first: it outlives the engine, whose shutdown may still call it
        auto e = makeEngine(m_vision);
        QVERIFY(e);
        std::vector<RequestId> ids;
        e->holdScheduling(true);  // none may finish before its cancel lands
        for (int i = 0; i < 4; ++i) ids.push_back(e->submit(imageQuestion({png(840, 560, 10 + i)}, "?", 4), c.sink()));
        for (RequestId id : ids) QVERIFY(e->cancel(id));
        e->holdScheduling(false);
        for (RequestId id : ids) {
            const std::vector<Event> ev = c.wait(id);
            QVERIFY(!ev.empty());
            int terminal = 0;
            for (const Event& x : ev) terminal += x.type == EventType::Finished || x.type == EventType::Error;
            QCOMPARE(terminal, 1);
            QVERIFY(ev.back().type == EventType::Finished);
            QCOMPARE(ev.back().reason, StopReason::Cancelled);
        }
        e->waitIdle();
        QCOMPARE(e->stats().numPreparing, 0);
        QVERIFY(run(*e, imageQuestion({png(84, 56, 0)}, "ok?", 2)).ok);
    }

    // While a phone screenshot goes through the vision tower, the stats say which block it is in (the GUI shows
    // "Encoding the image: vision tower 7/24 · 41 s"); a cancel then stops it between blocks, not after the tower.
    void screenshotStagesAndCancelMidTower() {
        Collector c;
        EngineOptions o;
        o.modelPath = m_vision;
        o.load.numThreads = 2;
        o.kvCacheBytes = int64_t(64) << 20;
        o.maxImagePixels = 5'000'000;
        auto e = Engine::create(o);
        QVERIFY(e.ok());
        using Clock = std::chrono::steady_clock;
        const RequestId id = (*e)->submit(imageQuestion({png(1080, 2400, 21)}, "Tap", 1), c.sink());
        std::vector<std::string> stages;
        std::string towerStage;
        const auto t0 = Clock::now();
        while (towerStage.empty() && Clock::now() - t0 < std::chrono::seconds(30)) {
            for (const RequestStats& r : (*e)->stats().requests) {
                if (r.id != id || r.stage.empty()) continue;
                if (stages.empty() || stages.back() != r.stage) stages.push_back(r.stage);
                if (r.state == "preparing" && r.stage.rfind("vision tower ", 0) == 0) towerStage = r.stage;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        std::string seen;
        for (const auto& st : stages) seen += "[" + st + "] ";
        QVERIFY2(!towerStage.empty(), seen.c_str());
        int done = -1, total = -1;
        QCOMPARE(std::sscanf(towerStage.c_str(), "vision tower %d/%d", &done, &total), 2);
        QCOMPARE(total, 2);  // the tiny tower's blocks
        const auto cancelAt = Clock::now();
        QVERIFY((*e)->cancel(id));
        const std::vector<Event> ev = c.wait(id);
        const double cancelMs = std::chrono::duration<double, std::milli>(Clock::now() - cancelAt).count();
        QVERIFY(!ev.empty());
        QVERIFY(ev.back().type == EventType::Finished);
        QCOMPARE(ev.back().reason, StopReason::Cancelled);
        // The same screenshot encoded whole, for scale.
        const auto full0 = Clock::now();
        QVERIFY(run(**e, imageQuestion({png(1080, 2400, 22)}, "Tap", 1)).ok);
        const double fullMs = std::chrono::duration<double, std::milli>(Clock::now() - full0).count();
        qInfo("stages seen: %s; cancelled at '%s' in %.0f ms; a whole screenshot takes %.0f ms", seen.c_str(),
              towerStage.c_str(), cancelMs, fullMs);
        QVERIFY2(cancelMs < fullMs, "the cancel waited for the whole tower");
        QCOMPARE((*e)->stats().numPreparing, 0);
    }

    // A full-size phone screenshot under the deployments' pixel budget, and the real photo fixture.
    void phoneScreenshotAndPhoto() {
        EngineOptions o;
        o.modelPath = m_vision;
        o.load.numThreads = 2;
        o.kvCacheBytes = int64_t(64) << 20;
        o.maxImagePixels = 5'000'000;
        o.maxBatchTokens = 2048;
        auto e = Engine::create(o);
        QVERIFY(e.ok());
        // 1080 x 2400: rounded to multiples of 28 it is 1092 x 2408, and the reference counts the still image twice
        // (temporal patch 2): 2 x 1092 x 2408 > 5 MP, so it scales by sqrt(2 x 1080 x 2400 / 5e6) and floors:
        // 1036 x 2352 -> 37 x 84 merged = 3108 image tokens.
        const auto shot = png(1080, 2400, 6);
        Request r = imageQuestion({shot}, "Tap the settings icon.", 2);
        Outcome out = run(**e, r);
        QVERIFY2(out.ok, out.error.c_str());
        QCOMPARE(out.usage.promptTokens, int64_t(4 + 1 + 37 * 84 + 1 + 22 + 2));
        WB_REQUIRE_FIXTURE("images/llama_cute.jpg");
        {
            QFile f(QString::fromStdString(wbtest::fixture("images/llama_cute.jpg")));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray b = f.readAll();
            Outcome photo = run(**e, imageQuestion({std::vector<uint8_t>(b.begin(), b.end())}, "What animal?", 2));
            QVERIFY2(photo.ok, photo.error.c_str());
        }
    }
};

QTEST_GUILESS_MAIN(TestGlmEngine)
#include "tst_glm_engine.moc"
