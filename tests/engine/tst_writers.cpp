// Checkpoint writers: GGUF metadata of every type and aligned tensors, safetensors files and shards, read back
// with the engine's readers and by hand; and wb-make-model's GGUF and HF outputs holding the same model.
#include <QProcess>
#include <QtTest>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "backend/cpu/weight_matrix.h"
#include "core/dtype.h"
#include "fixtures.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"

using namespace wb;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> readAll(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

template <typename T>
std::vector<uint8_t> bytesOf(const std::vector<T>& v) {
    std::vector<uint8_t> b(v.size() * sizeof(T));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
}

std::vector<uint8_t> pattern(size_t n, uint8_t salt) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * 31 + salt);
    return b;
}

bool sameBytes(const TensorInfo& t, const std::vector<uint8_t>& expected) {
    return size_t(t.numBytes) == expected.size() && std::memcmp(t.data, expected.data(), expected.size()) == 0;
}

std::string tmpPath(const std::string& name) {
    return wbtest::tempDir() + "/" + name;
}

template <typename T>
T readLe(const std::vector<uint8_t>& b, size_t& pos) {
    T v;
    std::memcpy(&v, b.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
}

std::string readGgufString(const std::vector<uint8_t>& b, size_t& pos) {
    const auto n = readLe<uint64_t>(b, pos);
    std::string s(reinterpret_cast<const char*>(b.data() + pos), size_t(n));
    pos += size_t(n);
    return s;
}

nlohmann::json safetensorsHeader(const std::vector<uint8_t>& file, uint64_t* headerLen) {
    size_t pos = 0;
    *headerLen = readLe<uint64_t>(file, pos);
    return nlohmann::json::parse(std::string(reinterpret_cast<const char*>(file.data() + 8), size_t(*headerLen)));
}

std::string makeModelExe() {
#ifdef WB_MAKE_MODEL
    return WB_MAKE_MODEL;  // a build dependency: missing is a failure, not a skip
#else
    // Built beside the tests in the same tree (build/engine/wb-make-model) when its target was built.
    const QString p = QCoreApplication::applicationDirPath() + "/../engine/wb-make-model";
    return QFileInfo::exists(p) ? p.toStdString() : std::string();
#endif
}

bool runMakeModel(const QStringList& args, QString* output) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(QString::fromStdString(makeModelExe()), args);
    const bool done = p.waitForFinished(600000);
    *output = QString::fromUtf8(p.readAll());
    return done && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
}

std::vector<float> toFloats(const TensorInfo& t) {
    std::vector<float> v(size_t(t.numElements()));
    const int64_t cols = t.shape.back();
    const int64_t rowBytes = dtypeRowBytes(t.dtype, cols);
    for (int64_t r = 0; r < t.numElements() / cols; ++r)
        dequantizeRow(t.dtype, t.data + r * rowBytes, &v[size_t(r * cols)], cols);
    return v;
}

}  // namespace

class TestWriters : public QObject {
    Q_OBJECT

private slots:
    void ggufMetadataEveryType() {
        GgufWriter w;
        w.setString("general.architecture", "llama");
        w.setU8("t.u8", 200);
        w.setI8("t.i8", -100);
        w.setU16("t.u16", 60000);
        w.setI16("t.i16", -30000);
        w.setU32("t.u32", 4000000000u);
        w.setI32("t.i32", -2000000000);
        w.setF32("t.f32", 0.1f);
        w.setBool("t.bool", true);
        w.setBool("t.bool0", false);
        w.setString("t.str", "h\xC3\xA9llo");
        w.setU64("t.u64", (uint64_t(1) << 52) + 3);
        w.setI64("t.i64", -(int64_t(1) << 50));
        w.setF64("t.f64", 1.0 / 3.0);
        w.setStringArray("t.strs", {"a", "", "\xE2\x96\x81the"});
        w.setNumberArray("t.f32s", GgufType::F32, {0.5, -1.25, 3.0});
        w.setNumberArray("t.i32s", GgufType::I32, {1, -2, 3});
        w.setNumberArray("t.u8s", GgufType::U8, {0, 255});
        w.setNumberArray("t.bools", GgufType::Bool, {1, 0, 1});
        w.setNumberArray("t.empty", GgufType::I64, {});
        w.setU32("t.u32", 7);  // replaced, not duplicated
        const std::string path = tmpPath("meta.gguf");
        auto r = w.write(path);
        QVERIFY2(r.ok(), r.ok() ? "" : r.error().message.c_str());

        auto g = GgufFile::open(path);
        QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
        const auto& f = **g;
        QCOMPARE(f.version(), 3u);
        QCOMPARE(f.getString("general.architecture").value(), std::string("llama"));
        QCOMPARE(f.getInt("general.alignment").value(), int64_t(32));
        QCOMPARE(f.getInt("t.u8").value(), int64_t(200));
        QCOMPARE(f.find("t.u8")->type, GgufType::U8);
        QCOMPARE(f.getInt("t.i8").value(), int64_t(-100));
        QCOMPARE(f.find("t.i8")->type, GgufType::I8);
        QCOMPARE(f.getInt("t.u16").value(), int64_t(60000));
        QCOMPARE(f.getInt("t.i16").value(), int64_t(-30000));
        QCOMPARE(f.getInt("t.u32").value(), int64_t(7));
        QCOMPARE(f.find("t.u32")->type, GgufType::U32);
        QCOMPARE(f.getInt("t.i32").value(), int64_t(-2000000000));
        QCOMPARE(float(f.getFloat("t.f32").value()), 0.1f);
        QCOMPARE(f.find("t.f32")->type, GgufType::F32);
        QCOMPARE(f.getBool("t.bool").value(), true);
        QCOMPARE(f.getBool("t.bool0").value(), false);
        QCOMPARE(f.getString("t.str").value(), std::string("h\xC3\xA9llo"));
        QCOMPARE(f.getInt("t.u64").value(), int64_t((uint64_t(1) << 52) + 3));
        QCOMPARE(f.find("t.u64")->type, GgufType::U64);
        QCOMPARE(f.getInt("t.i64").value(), -(int64_t(1) << 50));
        QCOMPARE(f.getFloat("t.f64").value(), 1.0 / 3.0);
        QCOMPARE(f.find("t.f64")->type, GgufType::F64);
        QCOMPARE(*f.getStringArray("t.strs"), (std::vector<std::string>{"a", "", "\xE2\x96\x81the"}));
        QCOMPARE(*f.getNumberArray("t.f32s"), (std::vector<double>{0.5, -1.25, 3.0}));
        QCOMPARE(f.find("t.f32s")->elemType, GgufType::F32);
        QCOMPARE(*f.getNumberArray("t.i32s"), (std::vector<double>{1, -2, 3}));
        QCOMPARE(f.find("t.i32s")->elemType, GgufType::I32);
        QCOMPARE(*f.getNumberArray("t.u8s"), (std::vector<double>{0, 255}));
        QCOMPARE(f.find("t.bools")->elemType, GgufType::Bool);
        QCOMPARE(f.find("t.bools")->numbers, (std::vector<double>{1, 0, 1}));
        QVERIFY(f.find("t.empty")->numbers.empty());
        QCOMPARE(f.metadata().size(), size_t(21));  // 20 set (one twice) + general.alignment
    }

    void ggufTensorsRoundTrip() {
        GgufWriter w;
        const std::vector<float> a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        std::vector<uint16_t> h(7);
        for (size_t i = 0; i < h.size(); ++i) h[i] = fp32ToFp16(float(i) * 0.5f);
        std::vector<float> q(2 * 64);
        for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(float(i));
        std::vector<uint8_t> qBytes(size_t(2 * dtypeRowBytes(DType::Q8_0, 64)));
        for (int r = 0; r < 2; ++r) quantizeRow(DType::Q8_0, &q[size_t(r) * 64], &qBytes[size_t(r * 68)], 64);
        const auto big = pattern(4 * 3 * 2 * 8 * 2, 7);
        QVERIFY(w.addTensor("a", DType::F32, {3, 5}, bytesOf(a)).ok());
        QVERIFY(w.addTensor("h", DType::F16, {7}, bytesOf(h)).ok());
        QVERIFY(w.addTensor("q", DType::Q8_0, {2, 64}, qBytes).ok());
        QVERIFY(w.addTensor("p", DType::BF16, {4, 3, 2, 8}, [&](uint8_t* dst, size_t n) -> Result<void> {
                     std::memcpy(dst, big.data(), n);
                     return {};
                 }).ok());
        const std::string path = tmpPath("tensors.gguf");
        QVERIFY(w.write(path).ok());

        auto g = GgufFile::open(path);
        QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
        const auto& f = **g;
        QCOMPARE(f.tensors().size(), size_t(4));
        const auto* ta = f.findTensor("a");
        QVERIFY(ta);
        QCOMPARE(ta->dtype, DType::F32);
        QCOMPARE(ta->shape, (std::vector<int64_t>{3, 5}));
        QVERIFY(sameBytes(*ta, bytesOf(a)));
        const auto* th = f.findTensor("h");
        QCOMPARE(th->shape, (std::vector<int64_t>{7}));
        QCOMPARE(th->dtype, DType::F16);
        QVERIFY(sameBytes(*th, bytesOf(h)));
        const auto* tq = f.findTensor("q");
        QCOMPARE(tq->dtype, DType::Q8_0);
        QCOMPARE(tq->shape, (std::vector<int64_t>{2, 64}));
        QVERIFY(sameBytes(*tq, qBytes));
        const auto* tp = f.findTensor("p");
        QCOMPARE(tp->dtype, DType::BF16);
        QCOMPARE(tp->shape, (std::vector<int64_t>{4, 3, 2, 8}));
        QVERIFY(sameBytes(*tp, big));
        const uint8_t* base = f.mappedFile()->data();
        for (const auto& t : f.tensors()) QCOMPARE((t.data - base) % 32, 0);
        QCOMPARE(fs::file_size(path) % 32, uintmax_t(0));
    }

    void ggufRawLayout() {
        // By hand: ne[] is the PyTorch shape reversed, offsets are relative to the aligned data start.
        GgufWriter w;
        w.setAlignment(64);
        QVERIFY(w.addTensor("w", DType::F32, {3, 5}, pattern(60, 1)).ok());
        QVERIFY(w.addTensor("b", DType::F32, {3}, pattern(12, 2)).ok());
        const std::string path = tmpPath("raw.gguf");
        QVERIFY(w.write(path).ok());
        const auto b = readAll(path);
        size_t pos = 0;
        QCOMPARE(std::string(reinterpret_cast<const char*>(b.data()), 4), std::string("GGUF"));
        pos = 4;
        QCOMPARE(readLe<uint32_t>(b, pos), 3u);
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(2));
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(1));
        QCOMPARE(readGgufString(b, pos), std::string("general.alignment"));
        QCOMPARE(readLe<uint32_t>(b, pos), uint32_t(GgufType::U32));
        QCOMPARE(readLe<uint32_t>(b, pos), 64u);
        QCOMPARE(readGgufString(b, pos), std::string("w"));
        QCOMPARE(readLe<uint32_t>(b, pos), 2u);
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(5));  // ne0 = in
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(3));  // ne1 = out
        QCOMPARE(readLe<uint32_t>(b, pos), 0u);           // GGML_TYPE_F32
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(0));
        QCOMPARE(readGgufString(b, pos), std::string("b"));
        QCOMPARE(readLe<uint32_t>(b, pos), 1u);
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(3));
        QCOMPARE(readLe<uint32_t>(b, pos), 0u);
        QCOMPARE(readLe<uint64_t>(b, pos), uint64_t(64));  // 60 bytes padded to 64
        const size_t dataStart = (pos + 63) / 64 * 64;
        QVERIFY(std::memcmp(b.data() + dataStart, pattern(60, 1).data(), 60) == 0);
        QVERIFY(std::memcmp(b.data() + dataStart + 64, pattern(12, 2).data(), 12) == 0);
        QCOMPARE(b.size(), dataStart + 128);
    }

    void ggufRejectsBadTensors() {
        GgufWriter w;
        QVERIFY(!w.addTensor("q", DType::Q8_0, {2, 40}, pattern(size_t(2 * 40), 0)).ok());  // not whole blocks
        QVERIFY(!w.addTensor("f", DType::F32, {2, 2}, pattern(15, 0)).ok());                // wrong byte count
        QVERIFY(!w.addTensor("i", DType::I8, {4}, pattern(4, 0)).ok());                     // no GGUF type
        QVERIFY(!w.addTensor("z", DType::F32, {0, 2}, pattern(0, 0)).ok());
        QVERIFY(w.addTensor("ok", DType::F32, {1}, pattern(4, 0)).ok());
        QVERIFY(!w.addTensor("ok", DType::F32, {1}, pattern(4, 0)).ok());  // duplicate
        // A failing producer fails the write and leaves no file behind.
        QVERIFY(w.addTensor("bad", DType::F32, {2}, [](uint8_t*, size_t) -> Result<void> {
                     return makeError("boom");
                 }).ok());
        const std::string path = tmpPath("bad.gguf");
        auto r = w.write(path);
        QVERIFY(!r.ok());
        QVERIFY(r.error().message.find("boom") != std::string::npos);
        QVERIFY(!fs::exists(path));
        QVERIFY(!fs::exists(path + ".partial"));
    }

    void safetensorsSingleFile() {
        SafetensorsWriter w;
        const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
        std::vector<uint16_t> h = {fp32ToFp16(1.0f), fp32ToFp16(-0.5f), fp32ToFp16(2.0f)};
        std::vector<uint16_t> bf = {fp32ToBf16(3.0f), fp32ToBf16(-1.0f)};
        QVERIFY(w.addTensor("model.a", DType::F32, {2, 3}, bytesOf(a)).ok());
        QVERIFY(w.addTensor("model.h", DType::F16, {3}, bytesOf(h)).ok());
        QVERIFY(w.addTensor("model.bf", DType::BF16, {1, 2}, [&](uint8_t* dst, size_t n) -> Result<void> {
                     std::memcpy(dst, bf.data(), n);
                     return {};
                 }).ok());
        QVERIFY(!w.addTensor("model.q", DType::Q8_0, {32}, pattern(34, 0)).ok());
        const std::string path = tmpPath("one.safetensors");
        QVERIFY(w.write(path).ok());

        const auto file = readAll(path);
        uint64_t headerLen = 0;
        const auto header = safetensorsHeader(file, &headerLen);
        QCOMPARE(headerLen % 8, uint64_t(0));
        QCOMPARE(header["__metadata__"]["format"].get<std::string>(), std::string("pt"));
        QCOMPARE(header["model.a"]["dtype"].get<std::string>(), std::string("F32"));
        QCOMPARE(header["model.a"]["shape"].get<std::vector<int64_t>>(), (std::vector<int64_t>{2, 3}));
        QCOMPARE(header["model.a"]["data_offsets"].get<std::vector<uint64_t>>(), (std::vector<uint64_t>{0, 24}));
        QCOMPARE(header["model.h"]["dtype"].get<std::string>(), std::string("F16"));
        QCOMPARE(header["model.h"]["data_offsets"].get<std::vector<uint64_t>>(), (std::vector<uint64_t>{24, 30}));
        QCOMPARE(header["model.bf"]["dtype"].get<std::string>(), std::string("BF16"));
        QCOMPARE(header["model.bf"]["data_offsets"].get<std::vector<uint64_t>>(), (std::vector<uint64_t>{30, 34}));
        QCOMPARE(file.size(), size_t(8 + headerLen + 34));
        QVERIFY(std::memcmp(file.data() + 8 + headerLen, a.data(), 24) == 0);
        // Padding is spaces, inside the declared length.
        QVERIFY(file[8 + headerLen - 1] == ' ' || file[8 + headerLen - 1] == '}');

        auto st = SafetensorsFile::open(path);
        QVERIFY2(st.ok(), st.ok() ? "" : st.error().message.c_str());
        QCOMPARE((*st)->tensors().size(), size_t(3));
        QCOMPARE((*st)->metadata().at("format"), std::string("pt"));
        for (const auto& t : (*st)->tensors()) {
            if (t.name == "model.a") {
                QCOMPARE(t.shape, (std::vector<int64_t>{2, 3}));
                QVERIFY(sameBytes(t, bytesOf(a)));
            } else if (t.name == "model.h") {
                QCOMPARE(t.dtype, DType::F16);
                QVERIFY(sameBytes(t, bytesOf(h)));
            } else {
                QCOMPARE(t.dtype, DType::BF16);
                QVERIFY(sameBytes(t, bytesOf(bf)));
            }
        }
    }

    void safetensorsSharded() {
        SafetensorsWriter w;
        std::map<std::string, std::vector<uint8_t>> data;
        for (int i = 0; i < 7; ++i) {
            const std::string name = std::string(1, 't').append(std::to_string(i));
            const size_t rows = i == 3 ? 40 : 4;  // one large tensor in the middle
            data[name] = pattern(rows * 8 * 4, uint8_t(i));
            QVERIFY(w.addTensor(name, DType::F32, {int64_t(rows), 8}, data[name]).ok());
        }
        const std::string dir = tmpPath("sharded");
        fs::remove_all(dir);
        QVERIFY(w.writeSharded(dir, 3).ok());
        const auto index = nlohmann::json::parse(readAll(dir + "/model.safetensors.index.json"));
        QCOMPARE(index["metadata"]["total_size"].get<uint64_t>(), w.totalBytes());
        QCOMPARE(index["weight_map"].size(), size_t(7));
        std::map<std::string, int> perShard;
        for (auto& [name, file] : index["weight_map"].items()) {
            ++perShard[file.get<std::string>()];
            const auto bytes = readAll(dir + "/" + file.get<std::string>());
            uint64_t hl = 0;
            const auto header = safetensorsHeader(bytes, &hl);
            QVERIFY2(header.contains(name), qPrintable(QString::fromStdString(name)));
            const auto off = header[name]["data_offsets"].get<std::vector<uint64_t>>();
            QCOMPARE(off[1] - off[0], uint64_t(data[name].size()));
            QVERIFY(std::memcmp(bytes.data() + 8 + hl + off[0], data[name].data(), data[name].size()) == 0);
        }
        QCOMPARE(perShard.size(), size_t(3));
        QVERIFY(perShard.count("model-00001-of-00003.safetensors"));
        QVERIFY(perShard.count("model-00003-of-00003.safetensors"));

        auto set = SafetensorsSet::openFolder(dir);
        QVERIFY2(set.ok(), set.ok() ? "" : set.error().message.c_str());
        QCOMPARE((*set)->tensors().size(), size_t(7));
        for (const auto& [name, bytes] : data) {
            const auto* t = (*set)->find(name);
            QVERIFY(t);
            QVERIFY(sameBytes(*t, bytes));
        }

        QVERIFY(!w.writeSharded(tmpPath("toomany"), 8).ok());
        const std::string single = tmpPath("single");
        QVERIFY(w.writeSharded(single, 1).ok());
        QVERIFY(fs::exists(single + "/model.safetensors"));
        QVERIFY(!fs::exists(single + "/model.safetensors.index.json"));
    }

    void makeModelGgufAndHfAreTheSameModel() {
        if (makeModelExe().empty()) QSKIP("wb-make-model was not built in this tree");
        const std::string gguf = tmpPath("mm.gguf");
        const std::string hf = tmpPath("mm-hf");
        fs::remove_all(hf);
        const QStringList shape = {"--dim",   "64",  "--layers",   "2",      "--ffn",   "96",
                                   "--heads", "4",   "--kv-heads", "2",      "--vocab", "100",
                                   "--ctx",   "128", "--qkv-bias", "--seed", "11"};
        QString out;
        QVERIFY2(
            runMakeModel(
                QStringList{"--out", QString::fromStdString(gguf), "--format", "gguf", "--dtype", "f16"} + shape, &out),
            qPrintable(out));
        QVERIFY2(runMakeModel(QStringList{"--out", QString::fromStdString(hf), "--format", "hf", "--dtype", "f16",
                                          "--shards", "2"} +
                                  shape,
                              &out),
                 qPrintable(out));

        auto g = GgufFile::open(gguf);
        QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
        const auto& f = **g;
        QCOMPARE(f.getString("general.architecture").value(), std::string("llama"));
        QCOMPARE(f.getInt("llama.embedding_length").value(), int64_t(64));
        QCOMPARE(f.getInt("llama.block_count").value(), int64_t(2));
        QCOMPARE(f.getInt("llama.feed_forward_length").value(), int64_t(96));
        QCOMPARE(f.getInt("llama.attention.head_count").value(), int64_t(4));
        QCOMPARE(f.getInt("llama.attention.head_count_kv").value(), int64_t(2));
        QCOMPARE(f.getInt("llama.context_length").value(), int64_t(128));
        QCOMPARE(f.getInt("llama.rope.dimension_count").value(), int64_t(16));
        QCOMPARE(f.getInt("general.file_type").value(), int64_t(1));
        QCOMPARE(f.getFloat("llama.rope.freq_base").value(), 10000.0);
        QVERIFY(!f.getStringArray("tokenizer.ggml.tokens"));  // vocab 100 matches no tokenizer

        auto set = SafetensorsSet::openFolder(hf);
        QVERIFY2(set.ok(), set.ok() ? "" : set.error().message.c_str());
        const auto cfg = nlohmann::json::parse(readAll(hf + "/config.json"));
        QCOMPARE(cfg["architectures"][0].get<std::string>(), std::string("Qwen2ForCausalLM"));
        QCOMPARE(cfg["num_key_value_heads"].get<int>(), 2);
        QVERIFY(fs::exists(hf + "/generation_config.json"));
        QVERIFY(fs::exists(hf + "/model.safetensors.index.json"));

        const std::map<std::string, std::string> names = {
            {"token_embd.weight", "model.embed_tokens.weight"},
            {"blk.1.attn_norm.weight", "model.layers.1.input_layernorm.weight"},
            {"blk.1.attn_v.weight", "model.layers.1.self_attn.v_proj.weight"},
            {"blk.1.attn_v.bias", "model.layers.1.self_attn.v_proj.bias"},
            {"blk.1.attn_output.weight", "model.layers.1.self_attn.o_proj.weight"},
            {"blk.1.ffn_norm.weight", "model.layers.1.post_attention_layernorm.weight"},
            {"blk.1.ffn_gate.weight", "model.layers.1.mlp.gate_proj.weight"},
            {"blk.1.ffn_up.weight", "model.layers.1.mlp.up_proj.weight"},
            {"blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"},
            {"output_norm.weight", "model.norm.weight"},
            {"output.weight", "lm_head.weight"},
        };
        for (const auto& [gn, hn] : names) {
            const auto* gt = f.findTensor(gn);
            const auto* ht = (*set)->find(hn);
            QVERIFY2(gt && ht, qPrintable(QString::fromStdString(gn)));
            QCOMPARE(gt->shape, ht->shape);
            QCOMPARE(toFloats(*gt), toFloats(*ht));
        }
        QCOMPARE(f.findTensor("blk.0.attn_norm.weight")->dtype, DType::F32);
        QCOMPARE(f.findTensor("blk.0.attn_q.bias")->dtype, DType::F32);
        QCOMPARE(f.findTensor("blk.0.ffn_up.weight")->dtype, DType::F16);
        QCOMPARE(toFloats(*f.findTensor("output_norm.weight")), std::vector<float>(64, 1.0f));

        // Q (4 heads) and K (2 heads), weights and biases: GGUF row h*hd + 2j + t is HF row h*hd + t*hd/2 + j.
        const int64_t hd = 16;
        for (const char* which : {"q", "k"}) {
            for (const char* kind : {"weight", "bias"}) {
                const auto* gt = f.findTensor(std::string("blk.0.attn_") + which + "." + kind);
                const auto* ht = (*set)->find(std::string("model.layers.0.self_attn.") + which + "_proj." + kind);
                QVERIFY(gt && ht);
                QCOMPARE(gt->shape, ht->shape);
                const auto gv = toFloats(*gt), hv = toFloats(*ht);
                const int64_t rows = gt->shape[0], cols = gt->shape.size() == 2 ? gt->shape[1] : 1;
                QCOMPARE(rows, int64_t(std::string(which) == "q" ? 64 : 32));
                for (int64_t r = 0; r < rows; ++r) {
                    const int64_t h = r / hd, j = (r % hd) / 2, t = r % 2;
                    const int64_t src = h * hd + t * (hd / 2) + j;
                    for (int64_t c = 0; c < cols; ++c) QCOMPARE(gv[size_t(r * cols + c)], hv[size_t(src * cols + c)]);
                }
                bool moved = false;  // the permutation is not the identity
                for (int64_t i = 0; i < rows * cols && !moved; ++i) moved = gv[size_t(i)] != hv[size_t(i)];
                QVERIFY(moved);
            }
        }

        // Statistics of the init: std 0.02, mean 0.
        const auto emb = toFloats(*f.findTensor("token_embd.weight"));
        double sum = 0, sq = 0;
        for (float x : emb) sum += x, sq += double(x) * x;
        const double mean = sum / double(emb.size()), sd = std::sqrt(sq / double(emb.size()) - mean * mean);
        QVERIFY2(std::abs(mean) < 0.002 && std::abs(sd - 0.02) < 0.001, qPrintable(QString("%1 %2").arg(mean).arg(sd)));
    }

    void makeModelQ8AndTokenizer() {
        if (makeModelExe().empty()) QSKIP("wb-make-model was not built in this tree");
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        const std::string gguf = tmpPath("mm-q8.gguf");
        QString out;
        QVERIFY2(runMakeModel({"--out", QString::fromStdString(gguf), "--preset", "tiny", "--layers", "1", "--dtype",
                               "q8_0", "--tied", "--tokenizer-from",
                               QString::fromStdString(wbtest::fixture("tokenizers/goldens/ggml-vocab-llama-spm.gguf"))},
                              &out),
                 qPrintable(out));
        auto g = GgufFile::open(gguf);
        QVERIFY2(g.ok(), g.ok() ? "" : g.error().message.c_str());
        const auto& f = **g;
        QCOMPARE(f.getInt("general.file_type").value(), int64_t(7));
        QCOMPARE(f.findTensor("blk.0.attn_q.weight")->dtype, DType::Q8_0);
        QCOMPARE(f.findTensor("token_embd.weight")->dtype, DType::Q8_0);
        QCOMPARE(f.findTensor("blk.0.ffn_norm.weight")->dtype, DType::F32);
        QVERIFY(!f.findTensor("output.weight"));  // tied
        const auto* tokens = f.getStringArray("tokenizer.ggml.tokens");
        QVERIFY(tokens);
        QCOMPARE(tokens->size(), size_t(32000));
        auto src = GgufFile::open(wbtest::fixture("tokenizers/goldens/ggml-vocab-llama-spm.gguf"));
        QVERIFY(src.ok());
        QCOMPARE(*tokens, *(*src)->getStringArray("tokenizer.ggml.tokens"));
        QCOMPARE(*f.getNumberArray("tokenizer.ggml.scores"), *(*src)->getNumberArray("tokenizer.ggml.scores"));
        QCOMPARE(f.getString("tokenizer.ggml.model"), (*src)->getString("tokenizer.ggml.model"));

        // Q8_0 dequantizes close to the F16 model of the same seed.
        const std::string f16 = tmpPath("mm-f16.gguf");
        QVERIFY2(
            runMakeModel({"--out", QString::fromStdString(f16), "--preset", "tiny", "--layers", "1", "--tied"}, &out),
            qPrintable(out));
        auto g16 = GgufFile::open(f16);
        QVERIFY(g16.ok());
        const auto a = toFloats(*f.findTensor("blk.0.ffn_down.weight"));
        const auto b = toFloats(*(*g16)->findTensor("blk.0.ffn_down.weight"));
        QCOMPARE(a.size(), b.size());
        double maxErr = 0;
        for (size_t i = 0; i < a.size(); ++i) maxErr = std::max(maxErr, double(std::abs(a[i] - b[i])));
        QVERIFY2(maxErr < 0.002, qPrintable(QString::number(maxErr)));
    }
};

QTEST_GUILESS_MAIN(TestWriters)
#include "tst_writers.moc"
