// Checkpoint readers against real fixtures and crafted broken files: every failure is an Error naming the
// file and the field or tensor, and no truncation of a real file crashes the reader.
#include <QtTest>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors.h"
#include "models/decoder/llama_model.h"
#include "models/decoder/model_config.h"
#include "models/glm/glm_config.h"
#include "models/model_registry.h"
#include "api/tokenizer.h"

namespace fs = std::filesystem;

namespace {

std::string readAll(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeAll(const std::string& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), std::streamsize(data.size()));
}

// A minimal GGUF v3 writer for crafting bad files byte by byte.
struct Bytes {
    std::string s;
    template <typename T>
    Bytes& put(T v) {
        s.append(reinterpret_cast<const char*>(&v), sizeof v);
        return *this;
    }
    Bytes& str(const std::string& x) {
        put<uint64_t>(x.size());
        s += x;
        return *this;
    }
};

std::string tinyGguf(uint32_t tensorType, uint64_t dim0, bool withData) {
    Bytes b;
    b.s = "GGUF";
    b.put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(1);
    b.str("general.architecture").put<uint32_t>(8).str("llama");
    b.str("w").put<uint32_t>(2).put<uint64_t>(dim0).put<uint64_t>(2).put<uint32_t>(tensorType).put<uint64_t>(0);
    while (b.s.size() % 32) b.s.push_back('\0');
    if (withData) b.s.append(size_t(dim0 * 2 * 4), '\0');
    return b.s;
}

std::string copyHfFolder(const std::string& name) {
    const std::string dst = wbtest::tempDir() + "/" + name;
    fs::remove_all(dst);
    fs::copy(wbtest::fixture("models/stories260K/hf"), dst, fs::copy_options::recursive);
    return dst;
}

void editConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
    const std::string p = dir + "/config.json";
    auto j = nlohmann::json::parse(readAll(p));
    edit(j);
    writeAll(p, j.dump(2));
}

}  // namespace

class TestFormats : public QObject {
    Q_OBJECT

private slots:
    void ggufReadsFixture() {
        WB_REQUIRE_FIXTURE("models/stories260K/stories260K.gguf");
        auto g = wb::GgufFile::open(wbtest::fixture("models/stories260K/stories260K.gguf"));
        QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
        QCOMPARE((*g)->version(), 3u);
        QCOMPARE(*(*g)->getString("general.architecture"), std::string("llama"));
        QCOMPARE(*(*g)->getInt("llama.embedding_length"), int64_t(64));
        const wb::TensorInfo* t = (*g)->findTensor("blk.0.attn_q.weight");
        QVERIFY(t);
        QCOMPARE(t->shape, (std::vector<int64_t>{64, 64}));
        QVERIFY((*g)->getStringArray("tokenizer.ggml.tokens"));
        QCOMPARE((*g)->getStringArray("tokenizer.ggml.tokens")->size(), size_t(512));
    }

    void safetensorsReadsFixture() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/model.safetensors");
        auto s = wb::SafetensorsSet::openFolder(wbtest::fixture("models/stories260K/hf"));
        QVERIFY2(s.ok(), s.ok() ? "" : s.error().message.c_str());
        const wb::TensorInfo* t = (*s)->find("model.layers.0.mlp.gate_proj.weight");
        QVERIFY(t);
        QCOMPARE(t->shape, (std::vector<int64_t>{172, 64}));
        QCOMPARE(t->dtype, wb::DType::F32);
    }

    void hfConfigReads() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        auto c = wb::configFromHfFolder(wbtest::fixture("models/stories260K/hf"));
        QVERIFY(c.ok());
        QCOMPARE(c->numKvHeads, int64_t(4));
        QCOMPARE(c->ffnDim, int64_t(172));
        QCOMPARE(c->architecture, std::string("llama"));
    }

    void ggufWrongMagic() {
        const std::string p = wbtest::tempDir() + "/wrong_magic.gguf";
        writeAll(p, "GGUX" + std::string(100, '\0'));
        auto g = wb::GgufFile::open(p);
        QVERIFY(!g.ok());
        QVERIFY2(g.error().message.find(p) != std::string::npos, g.error().message.c_str());
        QVERIFY2(g.error().message.find("magic") != std::string::npos, g.error().message.c_str());
    }

    void ggufUnknownDtype() {
        const std::string p = wbtest::tempDir() + "/unknown_dtype.gguf";
        writeAll(p, tinyGguf(99, 32, true));
        auto g = wb::GgufFile::open(p);
        QVERIFY(!g.ok());
        QVERIFY2(g.error().message.find("tensor w") != std::string::npos, g.error().message.c_str());
        QVERIFY2(g.error().message.find("unsupported tensor type 99") != std::string::npos, g.error().message.c_str());
    }

    void ggufTensorPastEnd() {
        const std::string p = wbtest::tempDir() + "/short_data.gguf";
        writeAll(p, tinyGguf(0, 32, false));
        auto g = wb::GgufFile::open(p);
        QVERIFY(!g.ok());
        QVERIFY2(g.error().message.find("truncated") != std::string::npos, g.error().message.c_str());
        QVERIFY2(g.error().message.find("tensor w") != std::string::npos, g.error().message.c_str());
    }

    void ggufHostileLengths() {
        // A string length of 2^63 must not allocate or read out of bounds.
        Bytes b;
        b.s = "GGUF";
        b.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1).put<uint64_t>(uint64_t(1) << 63);
        const std::string p = wbtest::tempDir() + "/hostile.gguf";
        writeAll(p, b.s);
        auto g = wb::GgufFile::open(p);
        QVERIFY(!g.ok());
        QVERIFY2(g.error().message.find(p) != std::string::npos, g.error().message.c_str());
    }

    void ggufEveryTruncationFailsCleanly() {
        WB_REQUIRE_FIXTURE("models/stories260K/stories260K.gguf");
        const std::string full = readAll(wbtest::fixture("models/stories260K/stories260K.gguf"));
        const std::string p = wbtest::tempDir() + "/truncated.gguf";
        // Cut inside the header densely, then through the tensor data coarsely.
        std::vector<size_t> cuts;
        for (size_t c = 0; c < 20000 && c < full.size(); c += 37) cuts.push_back(c);
        for (size_t c = 20000; c < full.size(); c += full.size() / 50) cuts.push_back(c);
        for (size_t cut : cuts) {
            writeAll(p, full.substr(0, cut));
            auto g = wb::GgufFile::open(p);
            QVERIFY2(!g.ok(), qPrintable(QString("a GGUF cut at %1 bytes was accepted").arg(cut)));
            QVERIFY2(g.error().message.find(p) != std::string::npos, g.error().message.c_str());
        }
        writeAll(p, full.substr(0, full.size() / 2));
        auto m = wb::LlamaModel::load(p);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("truncated") != std::string::npos, m.error().message.c_str());
    }

    void safetensorsTruncated() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/model.safetensors");
        const std::string dir = copyHfFolder("st_truncated");
        const std::string full = readAll(dir + "/model.safetensors");
        writeAll(dir + "/model.safetensors", full.substr(0, full.size() - 1000));
        auto s = wb::SafetensorsSet::openFolder(dir);
        QVERIFY(!s.ok());
        QVERIFY2(s.error().message.find("model.safetensors") != std::string::npos, s.error().message.c_str());
        QVERIFY2(s.error().message.find("truncated") != std::string::npos, s.error().message.c_str());
    }

    void safetensorsBadHeaderAndDtype() {
        const std::string dir = wbtest::tempDir() + "/st_bad";
        fs::create_directories(dir);
        std::string header = R"({"w":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]}})";
        uint64_t n = header.size();
        writeAll(dir + "/model.safetensors", std::string(reinterpret_cast<const char*>(&n), 8) + header + "abcd");
        auto s = wb::SafetensorsFile::open(dir + "/model.safetensors");
        QVERIFY(!s.ok());
        QVERIFY2(s.error().message.find("tensor w") != std::string::npos, s.error().message.c_str());
        QVERIFY2(s.error().message.find("F8_E4M3") != std::string::npos, s.error().message.c_str());
        header = "{not json";
        n = header.size();
        writeAll(dir + "/model.safetensors", std::string(reinterpret_cast<const char*>(&n), 8) + header);
        s = wb::SafetensorsFile::open(dir + "/model.safetensors");
        QVERIFY(!s.ok());
        QVERIFY2(s.error().message.find("JSON") != std::string::npos, s.error().message.c_str());
        header = R"({"w":{"dtype":"F32","shape":[3,3],"data_offsets":[0,4]}})";
        n = header.size();
        writeAll(dir + "/model.safetensors", std::string(reinterpret_cast<const char*>(&n), 8) + header + "abcd");
        s = wb::SafetensorsFile::open(dir + "/model.safetensors");
        QVERIFY(!s.ok());
        QVERIFY2(s.error().message.find("[3, 3]") != std::string::npos, s.error().message.c_str());
    }

    void shapeMismatchNamesTensor() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        const std::string dir = copyHfFolder("shape_mismatch");
        editConfig(dir, [](nlohmann::json& j) { j["intermediate_size"] = 256; });
        auto m = wb::LlamaModel::load(dir);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("model.layers.0.mlp.gate_proj.weight") != std::string::npos,
                 m.error().message.c_str());
        QVERIFY2(m.error().message.find("[172, 64]") != std::string::npos, m.error().message.c_str());
    }

    void missingTensorNamesIt() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        const std::string dir = copyHfFolder("missing_tensor");
        editConfig(dir, [](nlohmann::json& j) { j["num_hidden_layers"] = 6; });
        auto m = wb::LlamaModel::load(dir);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("missing tensor model.layers.5.") != std::string::npos,
                 m.error().message.c_str());
    }

    void unsupportedArchitecture() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        const std::string dir = copyHfFolder("bad_arch");
        editConfig(dir, [](nlohmann::json& j) { j["architectures"] = {"MambaForCausalLM"}; });
        auto m = wb::LlamaModel::load(dir);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("MambaForCausalLM") != std::string::npos, m.error().message.c_str());
        QVERIFY2(m.error().message.find("config.json") != std::string::npos, m.error().message.c_str());
    }

    void missingConfigField() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        const std::string dir = copyHfFolder("no_hidden");
        editConfig(dir, [](nlohmann::json& j) { j.erase("hidden_size"); });
        auto m = wb::LlamaModel::load(dir);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("hidden_size") != std::string::npos, m.error().message.c_str());
    }

    // Found by wb-fuzz-inputs (kind gguf): llama.block_count 1459617793 in an otherwise sane header made the loader
    // size its layer table (160 GB) before it found the tensors missing. The config now bounds every size.
    void ggufHugeLayerCountRefused() {
        wb::GgufWriter w;
        w.setString("general.architecture", "llama");
        w.setU32("llama.context_length", 128);
        w.setU32("llama.embedding_length", 8);
        w.setU32("llama.block_count", 1459617793);
        w.setU32("llama.feed_forward_length", 16);
        w.setU32("llama.attention.head_count", 2);
        w.setU32("llama.attention.head_count_kv", 1);
        w.setString("tokenizer.ggml.model", "llama");
        w.setStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
        QVERIFY(w.addTensor("token_embd.weight", wb::DType::F32, {4, 8}, std::vector<uint8_t>(4 * 8 * 4)).ok());
        const std::string p = wbtest::tempDir() + "/huge_layers.gguf";
        QVERIFY(w.write(p).ok());
        auto m = wb::LlamaModel::load(p);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("huge_layers.gguf") != std::string::npos, m.error().message.c_str());
        QVERIFY2(m.error().message.find("1459617793") != std::string::npos, m.error().message.c_str());
    }

    // An array length just under the cap (2^28 strings) in a 60-byte file: the reader reserved 8 GiB for it before
    // reading the first element (an absurd allocation under ASan). Now it fails on the data, reserving what fits.
    void ggufHugeArrayLengthFailsCleanly() {
        Bytes b;
        b.s = "GGUF";
        b.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        b.str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>((uint64_t(1) << 28) - 1);
        b.str("a");
        const std::string p = wbtest::tempDir() + "/huge_array.gguf";
        writeAll(p, b.s);
        auto g = wb::GgufFile::open(p);
        QVERIFY(!g.ok());
        QVERIFY2(g.error().message.find("truncated") != std::string::npos, g.error().message.c_str());
        QVERIFY2(g.error().message.find("tokenizer.ggml.tokens[1]") != std::string::npos, g.error().message.c_str());
    }

    // A float metadata value far outside int64 read through getInt() was an undefined conversion; it saturates.
    void ggufHugeFloatReadAsIntSaturates() {
        Bytes b;
        b.s = "GGUF";
        b.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
        b.str("general.alignment").put<uint32_t>(12).put<double>(1e300);
        const std::string p = wbtest::tempDir() + "/huge_float.gguf";
        writeAll(p, b.s);
        auto g = wb::GgufFile::open(p);
        QVERIFY(!g.ok());
        QVERIFY2(g.error().message.find("general.alignment 9223372036854775807") != std::string::npos,
                 g.error().message.c_str());
    }

    // Found by wb-fuzz-inputs (kind hf): "tie_word_embeddings": 1 made nlohmann::json throw type_error out of
    // LlamaModel::load. A mistyped field is an Error naming config.json now.
    void hfConfigWrongTypeIsAnError() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        const std::string dir = copyHfFolder("wrong_type");
        editConfig(dir, [](nlohmann::json& j) { j["tie_word_embeddings"] = 1; });
        auto m = wb::LlamaModel::load(dir);
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("config.json") != std::string::npos, m.error().message.c_str());
        QVERIFY2(m.error().message.find("boolean") != std::string::npos, m.error().message.c_str());
    }

    // Found probing the server (issue #13): "rms_norm_eps": "abc" was taken silently as the default 1e-6. A
    // number field that is not a positive finite number is an Error naming the file and the field.
    void hfConfigBadNumberIsAnError() {
        WB_REQUIRE_FIXTURE("models/stories260K/hf/config.json");
        const std::pair<const char*, nlohmann::json> cases[] = {
            {"rms_norm_eps", "abc"}, {"rms_norm_eps", -1.0}, {"rope_theta", nlohmann::json::array()}, {"rope_theta", 0}};
        int i = 0;
        for (const auto& [key, value] : cases) {
            const std::string dir = copyHfFolder("bad_number_" + std::to_string(i++));
            editConfig(dir, [&](nlohmann::json& j) { j[key] = value; });
            auto m = wb::LlamaModel::load(dir);
            QVERIFY2(!m.ok(), key);
            QVERIFY2(m.error().message.find("config.json: field " + std::string(key)) != std::string::npos,
                     m.error().message.c_str());
        }
    }

    // Shape dims of 2^63 and up were read as negative int64: [2^64-1, 2^64-1] is [-1, -1], whose product 1 matched
    // 4 data bytes, so the tensor was accepted with a negative shape.
    void safetensorsHugeDimsRefused() {
        const std::string dir = wbtest::tempDir() + "/st_huge_dims";
        fs::create_directories(dir);
        const std::string header =
            R"({"w":{"dtype":"F32","shape":[18446744073709551615,18446744073709551615],"data_offsets":[0,4]}})";
        const uint64_t n = header.size();
        writeAll(dir + "/model.safetensors", std::string(reinterpret_cast<const char*>(&n), 8) + header + "abcd");
        auto s = wb::SafetensorsFile::open(dir + "/model.safetensors");
        QVERIFY(!s.ok());
        QVERIFY2(s.error().message.find("tensor w") != std::string::npos, s.error().message.c_str());
        QVERIFY2(s.error().message.find("18446744073709551615") != std::string::npos, s.error().message.c_str());
    }

    // Found by libFuzzer (tests/fuzz/fuzz_config_json, docs/FUZZING.md): a number beyond double's range (-1e400)
    // in config.json made nlohmann throw out_of_range, not parse_error, and parseJsonObject caught only the
    // latter: identifyModel -- the first thing that opening a model folder does -- let it escape and the
    // process aborted. The same reader serves tokenizer.json, tokenizer_config.json, GLM's config.json and
    // preprocessor_config.json; each is now an error naming the file.
    void jsonNumberOutOfRangeIsAnError() {
        const std::string dir = wbtest::tempDir() + "/json_out_of_range";
        fs::create_directories(dir);
        writeAll(dir + "/config.json", R"({"architectures": ["LlamaForCausalLM"], "rope_theta": -1e400})");
        auto id = wb::identifyModel(dir);
        QVERIFY(!id.ok());
        QVERIFY2(id.error().message.find("config.json: not valid JSON") != std::string::npos,
                 id.error().message.c_str());
        auto cfg = wb::configFromHfFolder(dir);
        QVERIFY(!cfg.ok());
        auto glm = wb::glmConfigFromJson(R"({"text_config": {"rope_theta": 1e999}})", "config.json");
        QVERIFY(!glm.ok());
        QVERIFY2(glm.error().message.find("config.json") != std::string::npos, glm.error().message.c_str());
        writeAll(dir + "/tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 1e400}, "merges": []}})");
        auto tok = wb::Tokenizer::fromHfFolder(dir);
        QVERIFY(!tok.ok());
        QVERIFY2(tok.error().message.find("tokenizer.json") != std::string::npos, tok.error().message.c_str());
    }

    void notAModel() {
        auto m = wb::LlamaModel::load(wbtest::tempDir() + "/does_not_exist.gguf");
        QVERIFY(!m.ok());
        QVERIFY2(m.error().message.find("does_not_exist.gguf") != std::string::npos, m.error().message.c_str());
    }
};

QTEST_GUILESS_MAIN(TestFormats)
#include "tst_formats.moc"
