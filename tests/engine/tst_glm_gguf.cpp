// GLM-4 / GLM-4.1V as llama.cpp's GGUF pair (the `glm4` text model + the `glm4v` mmproj file), written by
// writeGlmGguf (wb-make-model --format gguf) from the tiny random HF folders: the files hold llama.cpp's names and
// keys, the engine reads them back into the same model (logits against the HF folder per weight type, text and
// image), and llama.cpp itself (node-llama-cpp's prebuilt CPU build, tools/llamacpp-yardstick) decodes the same
// greedy tokens from the text file. That last check skips, saying why, where node or the yardstick's
// node_modules are absent (tools/llamacpp-yardstick/setup.sh installs them from the npm registry).
#include "backend/cpu/amx_gemm.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/weight_matrix.h"
#include "formats/gguf.h"
#include "formats/kquant_encode.h"
#include "formats/safetensors.h"
#include "media/glm4v_image_processor.h"
#include "models/glm/glm_gguf_export.h"
#include "models/glm/glm_gguf_source.h"
#include "models/glm/glm_model.h"
#include "models/glm/glm_prompt.h"
#include "models/glm/glm_tiny.h"

#include <QProcess>
#include <QStandardPaths>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "test_images.h"

using namespace wb;
namespace fs = std::filesystem;

namespace {

// Logits of the GGUF pair against the HF folder it was written from, as the largest |difference| in a logits row
// relative to that row's spread (max - min; the tiny models' rows spread over about 8-10). F32: the same numbers
// (measured 0 text, 7.3e-7 image: the image mean / std are stored as f32). F16: each weight rounded to fp16 once
// (relative 2^-11); measured 6.2e-4 text; 5e-3 allowed. The F16 pair's image: its vision tower is held as BF16
// (GlmModel::loadWeights: F16 has no tile path; exact for an mmproj written from BF16 weights, but these tiny
// weights are random f32, so fp16 then bf16 rounding, plus BF16 activations on the tiles where AMX runs it);
// measured 1.2e-3 before that, 1.0e-2 with it; 2e-2 allowed. Q8_0: 32-value blocks with an fp16 scale
// (error up to 1/254 of a block's largest value, the embedding and output included); measured 1.9e-2 text, 4.4e-2
// image (the vision tower's 2 blocks are quantized too); 8e-2 allowed.
constexpr double kF32Tolerance = 1e-5;
constexpr double kF16Tolerance = 5e-3;
constexpr double kF16ImageTolerance = 2e-2;
constexpr double kQ8Tolerance = 8e-2;


std::string writeTiny(const std::string& dir, bool vision) {
    TinyGlmOptions o;
    o.vision = vision;
    auto r = writeTinyGlmCheckpoint(dir, o);
    if (!r.ok()) qWarning("%s", r.error().message.c_str());
    return dir;
}

/// All-position logits of one prompt (positions: three rows, or empty for text).
std::vector<float> logitsOf(GlmModel& m, const std::vector<int32_t>& ids, const std::vector<int64_t>& positions,
                            const std::vector<float>& features) {
    const int64_t n = int64_t(ids.size()), V = m.config().text.vocabSize;
    KvBlockPool pool(m.config().text.numLayers, m.kvDim(), 16, BlockTable::blocksFor(n + 16, 16));
    BlockTable table;
    for (int64_t i = 0; i < pool.numBlocks(); ++i) table.blocks.push_back(*pool.allocate());
    std::vector<float> out(size_t(n * V));
    GlmSequenceStep st;
    st.tokens = ids;
    st.positions = positions;
    st.imageFeatures = features;
    st.blocks = &table;
    auto r = m.forward(std::span<const GlmSequenceStep>(&st, 1), pool, out.data(), true);
    if (!r.ok()) {
        qWarning("forward: %s", r.error().message.c_str());
        return {};
    }
    return out;
}

/// Greedy continuation of a text prompt (prefill, then one token at a time with the KV cache).
std::vector<int32_t> greedy(GlmModel& m, std::vector<int32_t> ids, int steps) {
    const int64_t V = m.config().text.vocabSize;
    KvBlockPool pool(m.config().text.numLayers, m.kvDim(), 16, BlockTable::blocksFor(int64_t(ids.size()) + steps + 16, 16));
    BlockTable table;
    for (int64_t i = 0; i < pool.numBlocks(); ++i) table.blocks.push_back(*pool.allocate());
    std::vector<float> logits(static_cast<size_t>(V));
    std::vector<int32_t> out;
    int64_t start = 0;
    std::vector<int32_t> chunk = ids;
    for (int s = 0; s < steps; ++s) {
        GlmSequenceStep st;
        st.tokens = chunk;
        st.startIndex = start;
        st.blocks = &table;
        if (!m.forward(std::span<const GlmSequenceStep>(&st, 1), pool, logits.data()).ok()) return {};
        start += int64_t(chunk.size());
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(next);
        chunk = {next};
    }
    return out;
}

double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size() || a.empty()) return 1e30;
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d;
}

/// Largest |a - b| over the rows of `cols` logits, each relative to the reference row's spread (max - min).
double maxRelDiff(const std::vector<float>& a, const std::vector<float>& ref, int64_t cols) {
    if (a.size() != ref.size() || ref.empty()) return 1e30;
    double worst = 0;
    for (size_t r = 0; r < ref.size() / size_t(cols); ++r) {
        const float* x = a.data() + r * size_t(cols);
        const float* y = ref.data() + r * size_t(cols);
        const auto [lo, hi] = std::minmax_element(y, y + cols);
        double d = 0;
        for (int64_t i = 0; i < cols; ++i) d = std::max(d, double(std::fabs(x[i] - y[i])));
        worst = std::max(worst, d / std::max(1e-6, double(*hi - *lo)));
    }
    return worst;
}

const std::vector<int32_t> kTextPrompt = {kTinyGlmGmask, kTinyGlmSop, kTinyGlmUser, 10, 72, 101, 108, 108, 111,
                                          44,  32,  119, 111, 114, 108, 100, kTinyGlmAssistant, 10};

}  // namespace

class TestGlmGguf : public QObject {
    Q_OBJECT

    std::string m_dir;

    // A large file, by hand (WB_GLM_GGUF_LARGE=PATH, e.g. wb-make-model --arch glm4v --preset 9b --text-layers 2
    // --format gguf --dtype q4_k_m): llama.cpp and the engine decode the same 4 greedy tokens from it.
    void largeFileMatchesLlamaCpp(const QString& node, const std::string& yard, const char* path) {
        GlmLoadOptions lo;
        lo.loadTokenizer = false;
        auto g = GlmModel::loadGguf(path, "", lo);
        QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
        const std::vector<int32_t> prompt = {151331, 151333, 151336, 10, 72, 105, 151337, 10};
        const auto mine = greedy(**g, prompt, 4);
        QStringList ids;
        for (int32_t t : prompt) ids << QString::number(t);
        QProcess proc;
        proc.start(node, {QString::fromStdString(yard + "/greedy.mjs"), "--model", path, "--tokens", ids.join(","),
                          "--n", "4", "--threads", "2"});
        QVERIFY(proc.waitForFinished(600000));
        QVERIFY2(proc.exitCode() == 0, proc.readAllStandardError().constData());
        const auto j = nlohmann::json::parse(proc.readAllStandardOutput().toStdString(), nullptr, false);
        QVERIFY(j.is_object() && j.contains("tokens"));
        const auto theirs = j["tokens"].get<std::vector<int32_t>>();
        if (!theirs.empty() && theirs != mine) {
            // How close a call the first step was, in the engine's own logits.
            std::vector<float> first = logitsOf(**g, prompt, {}, {});
            const int64_t V = (*g)->config().text.vocabSize;
            const float* last = first.data() + (int64_t(prompt.size()) - 1) * V;
            int64_t rank = 0;
            for (int64_t v = 0; v < V; ++v) rank += last[v] > last[theirs[0]];
            qInfo("first step: engine's top %d (%.4f), llama.cpp's %d (%.4f, rank %lld of %lld in the engine's logits)",
                  mine[0], last[mine[0]], theirs[0], last[theirs[0]], (long long)rank + 1, (long long)V);
        }
        QCOMPARE(theirs, mine);
    }



private slots:
    void initTestCase() {
        m_dir = wbtest::tempDir() + "/glm_gguf";
        fs::remove_all(m_dir);
        writeTiny(m_dir + "/glm4", false);
        writeTiny(m_dir + "/glm4v", true);
        for (auto [name, type] : {std::pair{"f32", DType::F32}, {"f16", DType::F16}, {"q8_0", DType::Q8_0}}) {
            GlmGgufOptions o;
            o.textType = o.visionType = type;
            auto t = writeGlmGguf(m_dir + "/glm4", m_dir + "/glm4-" + name + ".gguf", "", o);
            QVERIFY2(t.ok(), t.ok() ? "" : t.error().message.c_str());
            auto v = writeGlmGguf(m_dir + "/glm4v", m_dir + "/glm4v-" + name + ".gguf",
                                  m_dir + "/mmproj-" + name + ".gguf", o);
            QVERIFY2(v.ok(), v.ok() ? "" : v.error().message.c_str());
            QCOMPARE(v->textTensors, 1 + 2 * 13 + 2);  // embedding, 2 layers of 13 (with q/k/v biases), norm, output
            QCOMPARE(v->visionTensors, 2 + 3 + 2 * 7 + 1 + 2 + 6);
        }
    }

    // The names and keys llama.cpp's loader and clip loader look up.
    void llamaCppLayout() {
        auto t = GgufFile::open(m_dir + "/glm4v-f16.gguf");
        QVERIFY(t.ok());
        const GgufFile& g = **t;
        QCOMPARE(g.getString("general.architecture").value_or(""), std::string("glm4"));
        QCOMPARE(g.getInt("glm4.block_count").value_or(0), int64_t(2));
        QCOMPARE(g.getInt("glm4.embedding_length").value_or(0), int64_t(64));
        QCOMPARE(g.getInt("glm4.feed_forward_length").value_or(0), int64_t(96));
        QCOMPARE(g.getInt("glm4.attention.head_count_kv").value_or(0), int64_t(2));
        QCOMPARE(g.getInt("glm4.rope.dimension_count").value_or(0), int64_t(8));  // head 16 x partial 0.5
        const auto* sec = g.getNumberArray("glm4.rope.dimension_sections");
        QVERIFY(sec && sec->size() == 4 && (*sec)[0] == 2 && (*sec)[1] == 1 && (*sec)[2] == 1 && (*sec)[3] == 0);
        QCOMPARE(g.getString("tokenizer.ggml.model").value_or(""), std::string("gpt2"));
        QCOMPARE(g.getString("tokenizer.ggml.pre").value_or(""), std::string("glm4"));
        QCOMPARE(int(g.getStringArray("tokenizer.ggml.tokens")->size()), kTinyGlmVocab);
        QCOMPARE(g.getInt("tokenizer.ggml.bos_token_id").value_or(-1), int64_t(kTinyGlmEndOfText));
        QCOMPARE(g.getInt("tokenizer.ggml.eos_token_id").value_or(-1), int64_t(kTinyGlmEndOfText));
        QCOMPARE(g.getInt("tokenizer.ggml.eot_token_id").value_or(-1), int64_t(kTinyGlmUser));
        QVERIFY(g.getString("tokenizer.chat_template").has_value());
        for (const char* n : {"token_embd.weight", "output_norm.weight", "output.weight", "blk.1.attn_norm.weight",
                              "blk.1.attn_q.bias", "blk.1.attn_output.weight", "blk.1.post_attention_norm.weight",
                              "blk.1.ffn_norm.weight", "blk.1.post_ffw_norm.weight", "blk.1.ffn_down.weight"})
            QVERIFY2(g.findTensor(n), n);
        // The fused gate_up stays one tensor of 2 x ffn rows; norms and biases stay F32.
        QCOMPARE(g.findTensor("blk.0.ffn_up.weight")->shape, (std::vector<int64_t>{192, 64}));
        QVERIFY(!g.findTensor("blk.0.ffn_gate.weight"));
        QCOMPARE(g.findTensor("blk.0.attn_q.weight")->dtype, DType::F16);
        QCOMPARE(g.findTensor("blk.0.attn_q.bias")->dtype, DType::F32);
        QCOMPARE(llamaFileType(DType::Q8_0), 7u);

        auto m = GgufFile::open(m_dir + "/mmproj-q8_0.gguf");
        QVERIFY(m.ok());
        const GgufFile& mm = **m;
        QCOMPARE(mm.getString("general.architecture").value_or(""), std::string("clip"));
        QCOMPARE(mm.getString("clip.projector_type").value_or(""), std::string("glm4v"));
        QCOMPARE(mm.getBool("clip.has_vision_encoder").value_or(false), true);
        QCOMPARE(mm.getInt("clip.vision.projection_dim").value_or(0), int64_t(64));
        QCOMPARE(mm.getInt("clip.vision.block_count").value_or(0), int64_t(2));
        // Conv3d → two Conv2d kernels; the downsampling conv as the patch merger.
        QCOMPARE(mm.findTensor("v.patch_embd.weight")->shape, (std::vector<int64_t>{32, 3, 14, 14}));
        QCOMPARE(mm.findTensor("v.patch_embd.weight.1")->shape, (std::vector<int64_t>{32, 3, 14, 14}));
        QCOMPARE(mm.findTensor("mm.patch_merger.weight")->shape, (std::vector<int64_t>{64, 32, 2, 2}));
        QCOMPARE(mm.findTensor("v.blk.1.attn_qkv.weight")->dtype, DType::Q8_0);
        for (const char* n : {"v.patch_embd.bias", "v.pre_ln.weight", "v.position_embd.weight", "v.blk.0.ln1.weight",
                              "v.blk.0.attn_out.weight", "v.blk.0.ffn_gate.weight", "v.post_ln.weight",
                              "mm.patch_merger.bias", "mm.model.fc.weight", "mm.post_norm.bias", "mm.gate.weight",
                              "mm.up.weight", "mm.down.weight"})
            QVERIFY2(mm.findTensor(n), n);
    }

    // F16 values are the HF values rounded to fp16, exactly; the patch kernel's temporal slices land where the
    // Conv3d had them.
    void valuesRoundTrip() {
        auto st = SafetensorsSet::openFolder(m_dir + "/glm4v");
        QVERIFY(st.ok());
        auto g = GgufFile::open(m_dir + "/glm4v-f16.gguf");
        QVERIFY(g.ok());
        const TensorInfo* hf = (*st)->find("model.language_model.layers.1.mlp.gate_up_proj.weight");
        const TensorInfo* gg = (*g)->findTensor("blk.1.ffn_up.weight");
        QVERIFY(hf && gg);
        const auto* a = reinterpret_cast<const float*>(hf->data);
        const auto* b = reinterpret_cast<const uint16_t*>(gg->data);
        for (int64_t i = 0; i < hf->numElements(); ++i) QCOMPARE(fp16ToFp32(b[i]), fp16ToFp32(fp32ToFp16(a[i])));
        auto mm = GgufFile::open(m_dir + "/mmproj-f32.gguf");
        QVERIFY(mm.ok());
        const TensorInfo* pe = (*st)->find("model.visual.patch_embed.proj.weight");  // [32, 3, 2, 14, 14]
        const auto* src = reinterpret_cast<const float*>(pe->data);
        const auto* s0 = reinterpret_cast<const float*>((*mm)->findTensor("v.patch_embd.weight")->data);
        const auto* s1 = reinterpret_cast<const float*>((*mm)->findTensor("v.patch_embd.weight.1")->data);
        // Element (o=5, c=2, h=3, w=7) of each slice.
        const int64_t o = 5, c = 2, h = 3, w = 7;
        QCOMPARE(s0[((o * 3 + c) * 14 + h) * 14 + w], src[(((o * 3 + c) * 2 + 0) * 14 + h) * 14 + w]);
        QCOMPARE(s1[((o * 3 + c) * 14 + h) * 14 + w], src[(((o * 3 + c) * 2 + 1) * 14 + h) * 14 + w]);
    }

    void textLogitsMatchHfFolder() {
        auto hf = GlmModel::load(m_dir + "/glm4");
        QVERIFY2(hf.ok(), hf.ok() ? "" : hf.error().message.c_str());
        const auto ref = logitsOf(**hf, kTextPrompt, {}, {});
        QVERIFY(!ref.empty());
        for (auto [name, tol] : {std::pair{"f32", kF32Tolerance}, {"f16", kF16Tolerance}, {"q8_0", kQ8Tolerance}}) {
            auto g = GlmModel::loadGguf(m_dir + "/glm4-" + name + ".gguf", "");
            QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
            QCOMPARE((*g)->config().text.rotaryDim, (*hf)->config().text.rotaryDim);
            QCOMPARE((*g)->config().eosTokenIds, (std::vector<int32_t>{kTinyGlmEndOfText, kTinyGlmUser}));
            const auto got = logitsOf(**g, kTextPrompt, {}, {});
            const double d = maxRelDiff(got, ref, kTinyGlmVocab);
            qInfo("glm4 %s: max |logit - HF folder's| = %.3g absolute, %.3g of the row's spread (allowed %.3g)", name,
                  maxAbsDiff(got, ref), d, tol);
            QVERIFY2(d <= tol, name);
            if (std::string(name) == "f16") QVERIFY2(d > 0, "F16 weights must differ from F32 somewhere");
        }
    }

    // CPU runs move the text matrices into huge-page memory (GlmLoadOptions::hugePages; loadGlm sets it): the same
    // bytes, so the same logits to the bit, from a mapped GGUF file and from a load-time conversion (int8).
    void hugePagesKeepTheLogits() {
        for (const std::string& path : {m_dir + "/glm4-q8_0.gguf", m_dir + "/glm4"}) {
            GlmLoadOptions plain, huge;
            if (path.find(".gguf") == std::string::npos) plain.weightType = huge.weightType = DType::I8;
            plain.loadTokenizer = huge.loadTokenizer = false;
            huge.hugePages = true;
            huge.hugePageMinBytes = 0;  // the tiny model's matrices are far under the default 16 MiB
            const bool gguf = path.find(".gguf") != std::string::npos;
            auto a = gguf ? GlmModel::loadGguf(path, "", plain) : GlmModel::load(path, plain);
            auto b = gguf ? GlmModel::loadGguf(path, "", huge) : GlmModel::load(path, huge);
            QVERIFY2(a.ok() && b.ok(), path.c_str());
            const auto x = logitsOf(**a, kTextPrompt, {}, {}), y = logitsOf(**b, kTextPrompt, {}, {});
            QVERIFY(!x.empty());
            QVERIFY2(x == y, path.c_str());
        }
    }

    // Q8_0 and Q4_0 text matrices interleaved for the AVX-512 generation kernels (interleaveBlocks, as loadGlm sets
    // it on such a CPU): with the same kernels (the AMX tiles off, so int8 activations everywhere) the same logits as
    // the plain layout, for a prompt of 5 tokens (the 4-token integer tiles and one more) and the whole 18, within 1e-5
    // of the largest logit (only the f32 order of the block sums differs), and the same greedy token. With the tiles
    // on, 18 tokens take AMX-INT8 for the interleaved matrices (the decode kernels' int8 activations, bit for bit:
    // tst_cpu_ops) where the plain ones take BF16 tiles (BF16 activations): held to a share of the Q8_0 tolerance,
    // measured 0.0145 (Q8_0) and 0.0144 (Q4_0) of the row's spread.
    void interleavedKeepsTheLogits_data() {
        QTest::addColumn<QString>("name");
        QTest::newRow("Q8_0") << "q8_0";
        QTest::newRow("Q4_0") << "q4_0";
    }
    void interleavedKeepsTheLogits() {
        QFETCH(QString, name);
        if (!cpu::interleavesBlocks()) QSKIP("this CPU's kernels have no interleaved block path (AVX-512 VNNI)");
        const std::string file = m_dir + "/glm4-" + name.toStdString() + ".gguf";
        if (name == "q4_0") {
            GlmGgufOptions o;
            o.textType = DType::Q4_0;
            auto t = writeGlmGguf(m_dir + "/glm4", file, "", o);
            QVERIFY2(t.ok(), t.ok() ? "" : t.error().message.c_str());
        }
        GlmLoadOptions plain, inter;
        plain.loadTokenizer = inter.loadTokenizer = false;
        inter.interleaveBlocks = true;
        auto a = GlmModel::loadGguf(file, "", plain);
        auto b = GlmModel::loadGguf(file, "", inter);
        QVERIFY(a.ok() && b.ok());
        QCOMPARE((*a)->interleavedMatrices(), int64_t(0));
        QVERIFY((*b)->interleavedMatrices() >= 5);  // every layer matrix the tiny shapes allow
        const int64_t vocab = (*a)->config().text.vocabSize;
        {
            // The tiles off for this block, back on however it ends (a failed check returns from here).
            struct AmxOff {
                bool was = cpu::amx::enabled();
                AmxOff() { cpu::amx::setEnabled(false); }
                ~AmxOff() { cpu::amx::setEnabled(was); }
            } off;
            for (size_t n : {size_t(5), kTextPrompt.size()}) {
                const std::vector<int32_t> prompt(kTextPrompt.begin(), kTextPrompt.begin() + std::ptrdiff_t(n));
                const auto x = logitsOf(**a, prompt, {}, {}), y = logitsOf(**b, prompt, {}, {});
                QVERIFY(!x.empty() && x.size() == y.size());
                float big = 0;
                for (float v : x) big = std::max(big, std::fabs(v));
                QVERIFY2(maxAbsDiff(x, y) <= 1e-5 * big, qPrintable(QString("%1 tokens: %2").arg(n).arg(maxAbsDiff(x, y))));
                const auto lastX = std::vector<float>(x.end() - vocab, x.end()), lastY = std::vector<float>(y.end() - vocab, y.end());
                QCOMPARE(std::max_element(lastY.begin(), lastY.end()) - lastY.begin(),
                         std::max_element(lastX.begin(), lastX.end()) - lastX.begin());
            }
        }
        if (cpu::amx::int8Enabled()) {
            const auto x = logitsOf(**a, kTextPrompt, {}, {}), y = logitsOf(**b, kTextPrompt, {}, {});
            const double d = maxRelDiff(y, x, vocab);
            qInfo("AMX: interleaved (int8 tiles) against plain (BF16 tiles): %.3g of the row's spread", d);
            QVERIFY2(d <= kQ8Tolerance / 4, qPrintable(QString::number(d)));
        }
    }

    void imageLogitsMatchHfFolder() {
        auto hf = GlmModel::load(m_dir + "/glm4v");
        QVERIFY2(hf.ok(), hf.ok() ? "" : hf.error().message.c_str());
        auto in = glm4vPreprocess(wbtest::procedural(84, 56, 0), (*hf)->processorConfig());
        QVERIFY(in.ok());
        std::vector<GlmPromptPart> parts = {{GlmPromptPart::Kind::Template, "[gMASK]<sop><|user|>\n", -1},
                                            {GlmPromptPart::Kind::Image, "", 0},
                                            {GlmPromptPart::Kind::Text, "What is it?", -1},
                                            {GlmPromptPart::Kind::Template, "<|assistant|>\n", -1}};
        auto p = buildGlmPrompt((*hf)->tokenizer(), (*hf)->config(), parts, {{1, 4, 6}});
        QVERIFY(p.ok());
        auto feats = (*hf)->encodeImage(*in);
        QVERIFY(feats.ok());
        const auto ref = logitsOf(**hf, p->ids, p->positions, *feats);
        QVERIFY(!ref.empty());
        for (auto [name, tol] : {std::pair{"f32", kF32Tolerance}, {"f16", kF16ImageTolerance}, {"q8_0", kQ8Tolerance}}) {
            auto g = GlmModel::loadGguf(m_dir + "/glm4v-" + name + ".gguf", m_dir + "/mmproj-" + name + ".gguf");
            QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
            GlmModel& gm = **g;
            QVERIFY(gm.config().hasVision);
            QCOMPARE(gm.config().imageTokenId, kTinyGlmImage);
            // The GGUF tokenizer and processor give the same prompt and pixels.
            auto in2 = glm4vPreprocess(wbtest::procedural(84, 56, 0), gm.processorConfig());
            QVERIFY(in2.ok());
            // Equal up to image_mean / image_std stored as f32, as llama.cpp keeps them.
            QCOMPARE(in2->gridH, in->gridH);
            QCOMPARE(in2->gridW, in->gridW);
            QVERIFY(maxAbsDiff(in2->pixels, in->pixels) < 1e-6);
            auto p2 = buildGlmPrompt(gm.tokenizer(), gm.config(), parts, {{1, 4, 6}});
            QVERIFY(p2.ok());
            QCOMPARE(p2->ids, p->ids);
            auto f2 = gm.encodeImage(*in2);
            QVERIFY2(f2.ok(), f2.ok() ? "" : f2.error().message.c_str());
            const double df = maxAbsDiff(*f2, *feats);
            const auto got = logitsOf(gm, p->ids, p->positions, *f2);
            const double d = maxRelDiff(got, ref, kTinyGlmVocab);
            qInfo("glm4v %s: max |image feature diff| = %.3g; max |logit - HF folder's| = %.3g absolute, %.3g of the "
                  "row's spread (allowed %.3g)", name, df, maxAbsDiff(got, ref), d, tol);
            QVERIFY2(d <= tol, name);
        }
    }

    void badFilesAreErrors() {
        // Text model as the mmproj, and the other way round: errors naming the key.
        auto a = GlmModel::loadGguf(m_dir + "/glm4v-f16.gguf", m_dir + "/glm4v-f16.gguf");
        QVERIFY(!a.ok());
        QVERIFY2(a.error().message.find("clip.projector_type") != std::string::npos, a.error().message.c_str());
        auto b = GlmModel::loadGguf(m_dir + "/mmproj-f16.gguf", "");
        QVERIFY(!b.ok());
        QVERIFY2(b.error().message.find("not glm4") != std::string::npos, b.error().message.c_str());
        // A GLM-4 text file has no M-RoPE sections for an mmproj.
        auto c = GlmModel::loadGguf(m_dir + "/glm4-f16.gguf", m_dir + "/mmproj-f16.gguf");
        QVERIFY(!c.ok());
        QVERIFY2(c.error().message.find("dimension_sections") != std::string::npos, c.error().message.c_str());
        // A GLM-4 folder has no vision tower to write.
        auto d = writeGlmGguf(m_dir + "/glm4", m_dir + "/x.gguf", m_dir + "/mm.gguf");
        QVERIFY(!d.ok());
        QVERIFY(isGlmGguf(m_dir + "/glm4-f16.gguf"));
        QVERIFY(!isGlmGguf(m_dir + "/mmproj-f16.gguf"));
    }

    // The K-quant encoders against the engine's decoders (ggml's layouts): relative RMS error of random N(0, 1)
    // rows (a range-based 4-bit step over 32 values gives about range / 15 / sqrt(12) = 0.08; measured 0.0785 Q4_K,
    // Q6_K below), and a super-block of exactly representable values comes back exactly.
    void kQuantEncoders() {
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> x(4096), y(4096);
        for (float& v : x) v = nd(rng);
        for (auto [type, bound] : {std::pair{DType::Q4_K, 0.09}, {DType::Q6_K, 0.025}}) {
            std::vector<uint8_t> q(size_t(dtypeRowBytes(type, 4096)));
            quantizeRow(type, x.data(), q.data(), 4096);
            dequantizeRow(type, q.data(), y.data(), 4096);
            double e = 0, r = 0;
            for (int i = 0; i < 4096; ++i) e += double(y[i] - x[i]) * (y[i] - x[i]), r += double(x[i]) * x[i];
            const double rel = std::sqrt(e / r);
            qInfo("%s: relative RMS error %.4f (allowed %.3f)", type == DType::Q4_K ? "Q4_K" : "Q6_K", rel, bound);
            QVERIFY(rel < bound);
            QVERIFY(rel > 0);
        }
        // Q6_K: integers -31..31 times 0.5 in every 16-value sub-block (scale 0.5 / d exactly representable).
        std::vector<float> e(256), back(256);
        for (int i = 0; i < 256; ++i) e[size_t(i)] = 0.5f * float((i * 7) % 63 - 31);
        for (int i = 0; i < 16; ++i) e[size_t(i * 16)] = 15.5f;  // |max| 31 x 0.5 in each sub-block
        std::vector<uint8_t> q6(210);
        quantizeRow(DType::Q6_K, e.data(), q6.data(), 256);
        dequantizeRow(DType::Q6_K, q6.data(), back.data(), 256);
        QVERIFY(maxAbsDiff(back, e) < 1e-3);
        // The Q4_K_M mix, as llama.cpp picks it for 40 layers.
        QCOMPARE(q4KMTypeFor("output.weight", -1, 40, 4096), DType::Q6_K);
        QCOMPARE(q4KMTypeFor("token_embd.weight", -1, 40, 4096), DType::Q4_K);
        QCOMPARE(q4KMTypeFor("blk.0.attn_v.weight", 0, 40, 4096), DType::Q6_K);
        QCOMPARE(q4KMTypeFor("blk.6.attn_v.weight", 6, 40, 4096), DType::Q4_K);  // (6 - 5) % 3 != 2
        QCOMPARE(q4KMTypeFor("blk.7.attn_v.weight", 7, 40, 4096), DType::Q6_K);  // (7 - 5) % 3 == 2
        QCOMPARE(q4KMTypeFor("blk.7.ffn_down.weight", 7, 40, 13696), DType::Q8_0);  // 13696 is not 256-aligned
        QCOMPARE(q4KMTypeFor("blk.6.ffn_down.weight", 6, 40, 13696), DType::Q5_0);  // llama.cpp's Q4_K fallback
        QCOMPARE(q4KMTypeFor("blk.6.ffn_down.weight", 6, 40, 200), DType::F16);     // not even 32-value blocks
        QCOMPARE(q4KMTypeFor("blk.8.attn_v.weight", 8, 40, 4096), DType::Q4_K);
        QCOMPARE(q4KMTypeFor("blk.8.attn_q.weight", 8, 40, 4096), DType::Q4_K);
        QCOMPARE(q4KMTypeFor("blk.39.attn_v.weight", 39, 40, 4096), DType::Q6_K);
    }

    // Q4_K_M of the tiny model: its 64-wide rows are not whole super-blocks, so llama.cpp's fallbacks apply
    // (Q6_K → Q8_0; Q4_K → Q5_0). Measured 0.155 of the row spread (5-bit blocks on every matrix of a 64-wide
    // model, the embedding included; 0.26 with Q4_0 there); 0.4 allowed: a misplaced block or scale gives about 1.
    void q4KMTinyFile() {
        GlmGgufOptions o;
        o.textType = DType::Q4_K;
        auto w = writeGlmGguf(m_dir + "/glm4", m_dir + "/glm4-q4_k_m.gguf", "", o);
        QVERIFY2(w.ok(), w.ok() ? "" : w.error().message.c_str());
        auto g = GgufFile::open(m_dir + "/glm4-q4_k_m.gguf");
        QVERIFY(g.ok());
        QCOMPARE((*g)->getInt("general.file_type").value_or(0), int64_t(15));
        QCOMPARE((*g)->findTensor("output.weight")->dtype, DType::Q8_0);
        QCOMPARE((*g)->findTensor("blk.1.attn_v.weight")->dtype, DType::Q8_0);  // layer 1 of 2: use_more_bits
        QCOMPARE((*g)->findTensor("blk.0.attn_v.weight")->dtype, DType::Q5_0);
        QCOMPARE((*g)->findTensor("blk.0.attn_q.weight")->dtype, DType::Q5_0);
        auto hf = GlmModel::load(m_dir + "/glm4");
        auto m = GlmModel::loadGguf(m_dir + "/glm4-q4_k_m.gguf", "");
        QVERIFY(hf.ok() && m.ok());
        const auto ref = logitsOf(**hf, kTextPrompt, {}, {});
        const double d = maxRelDiff(logitsOf(**m, kTextPrompt, {}, {}), ref, kTinyGlmVocab);
        qInfo("glm4 q4_k_m (tiny: Q5_0 / Q8_0 fallbacks): %.3g of the row's spread (allowed 0.4)", d);
        QVERIFY(d < 0.4);
    }

    // llama.cpp's own glm4 graph on the text file: the same greedy tokens as the engine on the file and on the
    // HF folder it came from.
    void greedyMatchesLlamaCpp() {
        const QString node = QStandardPaths::findExecutable("node");
        const std::string yard = std::string(WB_SOURCE_DIR) + "/tools/llamacpp-yardstick";
        if (node.isEmpty()) QSKIP("node is not installed: llama.cpp's greedy tokens not compared");
        if (!fs::exists(yard + "/node_modules/node-llama-cpp"))
            QSKIP("tools/llamacpp-yardstick/node_modules is absent (run tools/llamacpp-yardstick/setup.sh): "
                  "llama.cpp's greedy tokens not compared");
        auto hf = GlmModel::load(m_dir + "/glm4");
        QVERIFY(hf.ok());
        const auto mine = greedy(**hf, kTextPrompt, 16);
        QCOMPARE(int(mine.size()), 16);
        // The F16 file, as distributed (the F32 one equals the folder exactly, textLogitsMatchHfFolder); one node
        // run keeps the suite short.
        for (const char* name : {"f16"}) {
            auto g = GlmModel::loadGguf(m_dir + "/glm4-" + name + ".gguf", "");
            QVERIFY(g.ok());
            QCOMPARE(greedy(**g, kTextPrompt, 16), mine);
            QStringList ids;
            for (int32_t t : kTextPrompt) ids << QString::number(t);
            QProcess proc;
            proc.start(node, {QString::fromStdString(yard + "/greedy.mjs"), "--model",
                              QString::fromStdString(m_dir + "/glm4-" + name + ".gguf"), "--tokens", ids.join(","),
                              "--n", "16", "--threads", "2"});
            QVERIFY(proc.waitForFinished(60000));
            const QByteArray err = proc.readAllStandardError();
            QVERIFY2(proc.exitCode() == 0, err.constData());
            const auto j = nlohmann::json::parse(proc.readAllStandardOutput().toStdString(), nullptr, false);
            QVERIFY(j.is_object() && j.contains("tokens"));
            const auto theirs = j["tokens"].get<std::vector<int32_t>>();
            qInfo("llama.cpp (node-llama-cpp %s) on glm4-%s.gguf: %zu tokens",
                  j["llama_cpp"].value("node_llama_cpp", "?").c_str(), name, theirs.size());
            QCOMPARE(theirs, mine);
        }
        if (const char* large = std::getenv("WB_GLM_GGUF_LARGE"); large && *large) {
            largeFileMatchesLlamaCpp(node, yard, large);
            qInfo("llama.cpp and the engine agree on %s", large);
        }
    }
};

QTEST_GUILESS_MAIN(TestGlmGguf)
#include "tst_glm_gguf.moc"
