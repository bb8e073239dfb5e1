// Tokenizer suites: llama.cpp's vocab goldens (SPM and GPT-2 GGUF), the sentencepiece-library path against the
// same goldens, GGUF vs HF folder agreement, special-token handling, decoding and speed.
#include <QElapsedTimer>
#include <QtTest>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fixtures.h"
#include "formats/gguf.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "api/tokenizer.h"
#include "tokenizer/unicode_tables.h"

using namespace wb;

namespace {

struct GoldenCase {
    std::string input;
    std::vector<int32_t> ids;
};

std::string readAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// llama.cpp's test-tokenizer-0 format: .inp holds the inputs, each followed by "\n__ggml_vocab_test__\n"
/// (so an input may itself be empty or consist of newlines); .out has one line of ids per input. `numInputs` gets
/// the number of inputs, so a caller can tell a short .out (fewer cases than inputs) from a complete one.
std::vector<GoldenCase> loadGoldens(const std::string& base, size_t* numInputs = nullptr) {
    const std::string inp = readAll(base + ".inp");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> inputs;
    for (size_t pos = 0; pos < inp.size();) {
        size_t next = inp.find(sep, pos);
        if (next == std::string::npos) {
            inputs.push_back(inp.substr(pos));
            break;
        }
        inputs.push_back(inp.substr(pos, next - pos));
        pos = next + sep.size();
    }
    std::vector<GoldenCase> cases;
    std::istringstream out(readAll(base + ".out"));
    std::string line;
    for (const auto& input : inputs) {
        if (!std::getline(out, line)) break;
        GoldenCase c{input, {}};
        std::istringstream ids(line);
        for (int32_t id; ids >> id;) c.ids.push_back(id);
        cases.push_back(std::move(c));
    }
    if (numInputs) *numInputs = inputs.size();
    return cases;
}

QString idsToString(const std::vector<int32_t>& ids) {
    QStringList parts;
    for (int32_t id : ids) parts << QString::number(id);
    return parts.join(' ');
}

std::unique_ptr<Tokenizer> ggufTokenizer(const std::string& rel) {
    auto gguf = GgufFile::open(wbtest::fixture(rel));
    if (!gguf) qFatal("%s", gguf.error().message.c_str());
    auto tok = Tokenizer::fromGguf(**gguf);
    if (!tok) qFatal("%s", tok.error().message.c_str());
    return std::move(tok.value());
}

/// Runs every golden case; fails naming the first mismatch, and reports how many matched.
void checkGoldens(const Tokenizer& tok, const std::string& goldenBase) {
    size_t numInputs = 0;
    const auto cases = loadGoldens(wbtest::fixture(goldenBase), &numInputs);
    // An absent or truncated .inp/.out would otherwise pass with zero (or fewer) cases.
    QVERIFY2(cases.size() > 10, qPrintable(QString("%1 golden cases in %2.inp/.out")
                                               .arg(cases.size()).arg(QString::fromStdString(goldenBase))));
    QCOMPARE(cases.size(), numInputs);
    int matched = 0;
    QString firstFailure;
    for (const auto& c : cases) {
        const auto ids = tok.encode(c.input, /*addBos=*/false, SpecialTokens::Parse);
        if (ids == c.ids) {
            ++matched;
        } else if (firstFailure.isEmpty()) {
            firstFailure = QString("input \"%1\"\n   expected: %2\n   actual:   %3")
                               .arg(QString::fromStdString(c.input), idsToString(c.ids), idsToString(ids));
        }
    }
    qInfo("%s: %d/%d cases", goldenBase.c_str(), matched, int(cases.size()));
    QVERIFY2(firstFailure.isEmpty(), qPrintable(firstFailure));
}

/// A byte-level tokenizer.json written from the GPT-2 GGUF vocab, to run the HF loader against the goldens.
std::string writeGpt2TokenizerJson() {
    auto gguf = GgufFile::open(wbtest::fixture("tokenizers/goldens/ggml-vocab-gpt-2.gguf"));
    if (!gguf) qFatal("%s", gguf.error().message.c_str());
    const auto* tokens = (*gguf)->getStringArray("tokenizer.ggml.tokens");
    const auto* merges = (*gguf)->getStringArray("tokenizer.ggml.merges");
    const auto* types = (*gguf)->getNumberArray("tokenizer.ggml.token_type");
    nlohmann::json vocab = nlohmann::json::object();
    nlohmann::json added = nlohmann::json::array();
    for (size_t i = 0; i < tokens->size(); ++i) {
        if (types && (*types)[i] == 3)
            added.push_back({{"id", i},
                             {"content", (*tokens)[i]},
                             {"special", true},
                             {"lstrip", false},
                             {"rstrip", false},
                             {"normalized", false},
                             {"single_word", false}});
        vocab[(*tokens)[i]] = i;
    }
    nlohmann::json tj = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"pre_tokenizer",
         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", *merges}}},
    };
    const std::string dir = wbtest::tempDir() + "/gpt2-hf";
    QDir().mkpath(QString::fromStdString(dir));
    std::ofstream(dir + "/tokenizer.json") << tj.dump();
    std::ofstream(dir + "/tokenizer_config.json") << R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "add_bos_token": false, "chat_template": "{{ messages }}"})";
    return dir;
}

std::string englishText(size_t bytes) {
    std::string base = readAll("/usr/share/common-licenses/GPL-3");
    if (base.size() < 1000)
        base =
            "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times, "
            "it was the age of wisdom, it was the age of foolishness, it was the epoch of belief.\n";
    std::string text;
    while (text.size() < bytes) text += base;
    text.resize(bytes);
    return text;
}

}  // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

private slots:
    void goldens_data() {
        QTest::addColumn<QString>("source");
        QTest::addColumn<QString>("golden");
        QTest::newRow("gguf-llama-spm") << "tokenizers/goldens/ggml-vocab-llama-spm.gguf"
                                        << "tokenizers/goldens/ggml-vocab-llama-spm.gguf";
        QTest::newRow("gguf-gpt2") << "tokenizers/goldens/ggml-vocab-gpt-2.gguf"
                                   << "tokenizers/goldens/ggml-vocab-gpt-2.gguf";
        QTest::newRow("sentencepiece-llama2") << "tokenizers/llama2/tokenizer.model"
                                              << "tokenizers/goldens/ggml-vocab-llama-spm.gguf";
        QTest::newRow("tokenizer-json-gpt2") << "tokenizers/goldens/ggml-vocab-gpt-2.gguf#json"
                                             << "tokenizers/goldens/ggml-vocab-gpt-2.gguf";
    }

    void goldens() {
        QFETCH(QString, source);
        QFETCH(QString, golden);
        const std::string src = source.toStdString();
        const bool viaJson = src.ends_with("#json");
        const std::string file = viaJson ? src.substr(0, src.size() - 5) : src;
        WB_REQUIRE_FIXTURE(file);
        WB_REQUIRE_FIXTURE(golden.toStdString() + ".inp");
        WB_REQUIRE_FIXTURE(golden.toStdString() + ".out");
        std::unique_ptr<Tokenizer> tok;
        if (viaJson) {
            auto r = Tokenizer::fromHfFolder(writeGpt2TokenizerJson());
            QVERIFY2(r.ok(), r.ok() ? "" : r.error().message.c_str());
            tok = std::move(r.value());
            QCOMPARE(tok->kind(), std::string("bpe"));
            QVERIFY(tok->chatTemplate().has_value());
        } else if (file.ends_with(".model")) {
            const std::string dir = wbtest::fixture(file.substr(0, file.rfind('/')));
            auto r = Tokenizer::fromHfFolder(dir);
            QVERIFY2(r.ok(), r.ok() ? "" : r.error().message.c_str());
            tok = std::move(r.value());
        } else {
            tok = ggufTokenizer(file);
        }
        checkGoldens(*tok, golden.toStdString());
    }

    void goldenRoundTrip_data() {
        QTest::addColumn<QString>("file");
        QTest::newRow("spm") << "tokenizers/goldens/ggml-vocab-llama-spm.gguf";
        QTest::newRow("gpt2") << "tokenizers/goldens/ggml-vocab-gpt-2.gguf";
    }

    void goldenRoundTrip() {
        QFETCH(QString, file);
        WB_REQUIRE_FIXTURE(file.toStdString());
        WB_REQUIRE_FIXTURE(file.toStdString() + ".inp");
        WB_REQUIRE_FIXTURE(file.toStdString() + ".out");
        auto tok = ggufTokenizer(file.toStdString());
        size_t numInputs = 0;
        const auto cases = loadGoldens(wbtest::fixture(file.toStdString()), &numInputs);
        QVERIFY2(cases.size() > 10, qPrintable(QString("%1 golden cases").arg(cases.size())));
        QCOMPARE(cases.size(), numInputs);
        for (const auto& c : cases) {
            const std::string back = tok->decode(c.ids);
            QVERIFY2(back == c.input,
                     qPrintable(QString("\"%1\" decoded as \"%2\"")
                                    .arg(QString::fromStdString(c.input), QString::fromStdString(back))));
        }
    }

    void storiesGgufMatchesHf() {
        WB_REQUIRE_FIXTURE("models/stories260K/stories260K.gguf");
        WB_REQUIRE_FIXTURE("models/stories260K/hf/tokenizer.model");
        auto gguf = ggufTokenizer("models/stories260K/stories260K.gguf");
        auto hf = Tokenizer::fromHfFolder(wbtest::fixture("models/stories260K/hf"));
        QVERIFY2(hf.ok(), hf.ok() ? "" : hf.error().message.c_str());
        QCOMPARE((*hf)->vocabSize(), gguf->vocabSize());
        QCOMPARE((*hf)->bos(), gguf->bos());
        QCOMPARE((*hf)->eos(), gguf->eos());
        QCOMPARE((*hf)->addBosByDefault(), gguf->addBosByDefault());
        // tok512.model was trained with sentencepiece's remove_extra_whitespaces, which the GGUF conversion does
        // not carry (llama.cpp never collapses spaces for SPM); so the strings avoid leading, trailing and
        // repeated spaces, where the two legitimately differ.
        const char* texts[] = {"",
                               "Once upon a time, there was a little girl named Lily.",
                               "one\ttab\nnewline",
                               "Hello, world! 12345",
                               "Ünïcödé ☃ 日本語",
                               "<s>Lily</s>said \"hi\"",
                               "\n\n",
                               "a",
                               "Tom's dog can't run."};
        for (const char* t : texts) {
            for (auto mode : {SpecialTokens::Parse, SpecialTokens::Plain}) {
                const auto a = gguf->encode(t, true, mode);
                const auto b = (*hf)->encode(t, true, mode);
                QVERIFY2(a == b, qPrintable(QString("\"%1\": gguf %2, hf %3").arg(t, idsToString(a), idsToString(b))));
            }
            QCOMPARE(gguf->decode(gguf->encode(t, false, SpecialTokens::Plain)), std::string(t));
        }
    }

    void specialTokensSpm() {
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        auto tok = ggufTokenizer("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        QCOMPARE(tok->bos(), 1);
        QCOMPARE(tok->eos(), 2);
        QCOMPARE(tok->encode("<s>", false, SpecialTokens::Parse), std::vector<int32_t>{1});
        QCOMPARE(tok->encode("</s>", false, SpecialTokens::Parse), std::vector<int32_t>{2});
        const auto plainBos = tok->encode("<s>", false, SpecialTokens::Plain);
        const auto plainEos = tok->encode("</s>", false, SpecialTokens::Plain);
        QVERIFY(plainBos.size() > 1);
        QVERIFY(plainEos.size() > 1);
        for (int32_t id : plainBos) QVERIFY(!tok->isControl(id));
        for (int32_t id : plainEos) QVERIFY(!tok->isControl(id));
        QCOMPARE(tok->decode(plainEos), std::string("</s>"));

        // Special tokens split the text, and the plain text after one gets its own space prefix.
        const auto mixed = tok->encode("Hello</s>world", true, SpecialTokens::Parse);
        std::vector<int32_t> expected{1};
        for (int32_t id : tok->encode("Hello", false, SpecialTokens::Parse)) expected.push_back(id);
        expected.push_back(2);
        for (int32_t id : tok->encode("world", false, SpecialTokens::Parse)) expected.push_back(id);
        QCOMPARE(mixed, expected);
        QCOMPARE(tok->decode(mixed), std::string("Helloworld"));
        QCOMPARE(tok->decode(mixed, true), std::string("<s>Hello</s>world"));
        QCOMPARE(tok->specialTokenId("</s>"), std::optional<int32_t>(2));
        QVERIFY(!tok->specialTokenId("Hello").has_value());
        QVERIFY(std::find(tok->stopTokens().begin(), tok->stopTokens().end(), 2) != tok->stopTokens().end());
    }

    void specialTokensGpt2() {
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        auto tok = ggufTokenizer("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        QCOMPARE(tok->kind(), std::string("bpe"));
        const auto eot = tok->specialTokenId("<|endoftext|>");
        QVERIFY(eot.has_value());
        QCOMPARE(tok->encode("a<|endoftext|>b", false, SpecialTokens::Parse).size(), size_t(3));
        QCOMPARE(tok->encode("a<|endoftext|>b", false, SpecialTokens::Parse)[1], *eot);
        const auto plain = tok->encode("<|endoftext|>", false, SpecialTokens::Plain);
        QVERIFY(plain.size() > 1);
        QVERIFY(std::find(plain.begin(), plain.end(), *eot) == plain.end());
        QCOMPARE(tok->decode(plain), std::string("<|endoftext|>"));
        QCOMPARE(tok->tokenBytes(*eot), std::string());
        QCOMPARE(tok->tokenBytes(*eot, true), std::string("<|endoftext|>"));
    }

    void tokenBytes() {
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        auto tok = ggufTokenizer("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        QCOMPARE(tok->piece(13), std::string("<0x0A>"));
        QCOMPARE(tok->tokenBytes(13), std::string("\n"));
        QCOMPARE(tok->tokenBytes(29871), std::string(" "));
        QCOMPARE(tok->tokenBytes(15043), std::string(" Hello"));
        QCOMPARE(tok->tokenBytes(1), std::string());
        QCOMPARE(tok->tokenBytes(1, true), std::string("<s>"));
        QVERIFY(tok->isControl(1));
        QCOMPARE(tok->decode({15043, 3186}), std::string("Hello world"));
        QCOMPARE(tok->decode({1, 15043, 3186}), std::string("Hello world"));
        QCOMPARE(tok->decode({29871, 15043, 3186}), std::string(" Hello world"));
        QCOMPARE(tok->tokenBytes(-1), std::string());
        QCOMPARE(tok->tokenBytes(tok->vocabSize()), std::string());

        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        auto bpe = ggufTokenizer("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        QCOMPARE(bpe->piece(18435), std::string("\xC4\xA0Hello"));  // "ĠHello"
        QCOMPARE(bpe->tokenBytes(18435), std::string(" Hello"));
        QCOMPARE(bpe->tokenBytes(198), std::string("\n"));
        QCOMPARE(bpe->decode({18435, 995}), std::string(" Hello world"));
    }

    void preTokenizers_data() {
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QStringList>("words");
        const int gpt2 = int(PreTokenizer::Gpt2), llama3 = int(PreTokenizer::Llama3), qwen2 = int(PreTokenizer::Qwen2);
        QTest::newRow("gpt2") << gpt2 << "Hello world's  12345 !!\n\n  x"
                              << QStringList{"Hello", " world", "'s", " ", " 12345", " !!", "\n\n ", " x"};
        QTest::newRow("llama3") << llama3 << "Hello WORLD'S 12345 it's\n\n  x."
                                << QStringList{"Hello", " WORLD", "'S",   " ", "123", "45",
                                               " it",   "'s",     "\n\n", " ", " x",  "."};
        QTest::newRow("qwen2") << qwen2 << "ab 123 ?!\r\nc" << QStringList{"ab", " ", "1", "2", "3", " ?!\r\n", "c"};
        QTest::newRow("unicode") << llama3 << "Ünïcödé 日本語 ½" << QStringList{"Ünïcödé", " 日本語", " ", "½"};
    }

    void preTokenizers() {
        QFETCH(int, kind);
        QFETCH(QString, text);
        QFETCH(QStringList, words);
        const std::string s = text.toStdString();
        QStringList actual;
        for (auto w : preTokenize(s, PreTokenizer(kind))) actual << QString::fromStdString(std::string(w));
        QCOMPARE(actual, words);
    }

    void performance() {
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        auto tok = ggufTokenizer("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        const std::string text = englishText(100 * 1024);
        QElapsedTimer timer;
        timer.start();
        const auto ids = tok->encode(text, true, SpecialTokens::Plain);
        const qint64 spmMs = timer.elapsed();
        QCOMPARE(tok->decode(ids), text);

        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        auto bpe = ggufTokenizer("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        timer.restart();
        const auto bpeIds = bpe->encode(text, false, SpecialTokens::Plain);
        const qint64 bpeMs = timer.elapsed();
        QCOMPARE(bpe->decode(bpeIds), text);
        qInfo("100 KiB English: spm %lld ms (%zu tokens), gpt2 bpe %lld ms (%zu tokens)", spmMs, ids.size(), bpeMs,
              bpeIds.size());
        QVERIFY2(spmMs < 1000, "SPM tokenization of 100 KiB took over a second");
        QVERIFY2(bpeMs < 1000, "BPE tokenization of 100 KiB took over a second");
    }

    void tokenizerJsonLlama3Style() {
        // A tiny Llama-3-shaped tokenizer.json: Split regex + ByteLevel without regex, special and plain added
        // tokens, BOS from the post-processor template.
        nlohmann::json vocab = nlohmann::json::object();
        const auto byteMap = gpt2ByteToCodepoint();
        for (int b = 0; b < 256; ++b) {
            std::string piece;
            unicode::appendUtf8(piece, byteMap[size_t(b)]);
            vocab[piece] = b;
        }
        vocab["He"] = 256;
        vocab["ll"] = 257;
        vocab["Hell"] = 258;
        vocab["Hello"] = 259;
        const auto added = [](int id, const char* text, bool special) {
            return nlohmann::json{{"id", id},        {"content", text},        {"special", special},  {"lstrip", false},
                                  {"rstrip", false}, {"normalized", !special}, {"single_word", false}};
        };
        const std::string regex =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
            "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
        nlohmann::json tj = {
            {"added_tokens",
             {added(260, "<|begin_of_text|>", true), added(261, "<|eot_id|>", true), added(262, "<extra>", false)}},
            {"pre_tokenizer",
             {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
            {"post_processor",
             {{"type", "TemplateProcessing"},
              {"single",
               {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model",
             {{"type", "BPE"},
              {"ignore_merges", true},
              {"vocab", vocab},
              {"merges", {{"H", "e"}, {"l", "l"}, {"He", "ll"}, {"Hell", "o"}}}}},
        };
        const std::string dir = wbtest::tempDir() + "/llama3-hf";
        QDir().mkpath(QString::fromStdString(dir));
        std::ofstream(dir + "/tokenizer.json") << tj.dump();
        std::ofstream(dir + "/tokenizer_config.json") << R"({"eos_token": "<|eot_id|>"})";

        auto r = Tokenizer::fromHfFolder(dir);
        QVERIFY2(r.ok(), r.ok() ? "" : r.error().message.c_str());
        auto& tok = *r;
        QCOMPARE(tok->bos(), 260);
        QCOMPARE(tok->eos(), 261);
        QVERIFY(tok->addBosByDefault());
        QCOMPARE(tok->encode("Hello<|eot_id|>Hello", true, SpecialTokens::Parse),
                 (std::vector<int32_t>{260, 259, 261, 259}));
        const auto plain = tok->encode("<|eot_id|>", false, SpecialTokens::Plain);
        QCOMPARE(plain.size(), size_t(10));
        QCOMPARE(tok->decode(plain), std::string("<|eot_id|>"));
        // Non-special added tokens are matched in user text too, as HF and llama.cpp do.
        QCOMPARE(tok->encode("a<extra>", false, SpecialTokens::Plain), (std::vector<int32_t>{'a', 262}));
        QCOMPARE(tok->encode("12345", false, SpecialTokens::Plain), (std::vector<int32_t>{'1', '2', '3', '4', '5'}));
        QCOMPARE(tok->decode({260, 259, 261}), std::string("Hello"));
        QCOMPARE(tok->decode({260, 259, 261}, true), std::string("<|begin_of_text|>Hello<|eot_id|>"));
        QVERIFY(std::find(tok->stopTokens().begin(), tok->stopTokens().end(), 261) != tok->stopTokens().end());
    }

    void arbitraryBytesRoundTrip() {
        // Invalid UTF-8 must neither crash nor lose bytes: SPM falls back to <0xXX>, byte-level BPE covers all 256.
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-gpt-2.gguf");
        std::string text;
        uint32_t state = 12345;
        for (int i = 0; i < 20000; ++i) {
            state = state * 1664525u + 1013904223u;
            text.push_back(static_cast<char>(state >> 24));
        }
        for (const char* file :
             {"tokenizers/goldens/ggml-vocab-llama-spm.gguf", "tokenizers/goldens/ggml-vocab-gpt-2.gguf"}) {
            auto tok = ggufTokenizer(file);
            const auto ids = tok->encode(text, false, SpecialTokens::Plain);
            for (int32_t id : ids) QVERIFY(id >= 0 && id < tok->vocabSize());
            QVERIFY2(tok->decode(ids) == text, file);
        }
    }

    void errors() {
        auto r = Tokenizer::fromHfFolder(wbtest::tempDir() + "/no-such-dir");
        QVERIFY(!r.ok());
        QVERIFY(!r.error().message.empty());
    }

    // Found by wb-fuzz-inputs (kind tokenizer): a negative id in model.vocab or added_tokens was cast to size_t
    // and written far before the piece table (ASan heap-buffer-overflow). Now an error naming the entry.
    // A checkpoint's JSON with a syntax error says where: the file, then the parser's line and column.
    void badJsonSaysWhere() {
        const std::string dir = wbtest::tempDir() + "/tokjson-syntax";
        std::filesystem::create_directories(dir);
        std::ofstream(dir + "/tokenizer.json", std::ios::trunc) << "{\n  \"model\": {\n    \"type\": BPE\n  }\n}\n";
        auto r = Tokenizer::fromHfFolder(dir);
        QVERIFY(!r.ok());
        const std::string& m = r.error().message;
        QVERIFY2(m.find("tokenizer.json: not valid JSON") != std::string::npos, m.c_str());
        QVERIFY2(m.find("line 3") != std::string::npos, m.c_str());
        QVERIFY2(m.find("[json.exception") == std::string::npos, m.c_str());
        std::ofstream(dir + "/tokenizer.json", std::ios::trunc) << "[1, 2]";
        r = Tokenizer::fromHfFolder(dir);
        QVERIFY(!r.ok());
        QVERIFY2(r.error().message.find("not a JSON object (its top level is of type array)") != std::string::npos,
                 r.error().message.c_str());
    }

    void tokenizerJsonNegativeIds() {
        const std::string dir = wbtest::tempDir() + "/tokjson-negative";
        std::filesystem::create_directories(dir);
        const char* const bodies[] = {
            R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": -3}, "merges": []}, "decoder": {"type": "ByteLevel"}})",
            R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 18446744073709551615}, "merges": []},
                "decoder": {"type": "ByteLevel"}})",
            R"({"added_tokens": [{"id": -1, "content": "<x>", "special": true}],
                "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "ByteLevel"}})",
        };
        for (const char* body : bodies) {
            std::ofstream(dir + "/tokenizer.json", std::ios::trunc) << body;
            auto r = Tokenizer::fromHfFolder(dir);
            QVERIFY2(!r.ok(), body);
            QVERIFY2(r.error().message.find("tokenizer.json") != std::string::npos, r.error().message.c_str());
            QVERIFY2(r.error().message.find("negative") != std::string::npos, r.error().message.c_str());
        }
    }
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "tst_tokenizer.moc"
