// The load test's arithmetic against known inputs: summaries (mean, sd, P50/P90/P99 by numpy's linear
// interpolation) of known values; runLoadTest over a scripted target whose latencies, token counts and errors are
// chosen here, so every figure of the result is known in advance; the cap on requests in flight; and the
// comparison table and CSV carrying the numbers of the JSON they are made from. Then the prompts of text workloads
// (RoundTripPrompts): that random ids do not survive a trip through text and JSON (how an image workload once
// counted 58.5 prompt tokens in process and 97.5 at Transformers), that the drawn prompts do for each tokenizer
// kind, and that a comparison whose targets counted different prompt tokens says so.
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "api/bench_report.h"
#include "api/load_test.h"
#include "api/tokenizer.h"
#include "fixtures.h"

using namespace wb;

namespace {

/// A byte-level BPE vocabulary shaped like wb-make-model's tiny GLM-4.1V (the image workload's model): the 256 bytes
/// (GPT-2's printable stand-ins), no merges, then GLM's added tokens from 256 (two of them, <think> and </think>,
/// not special); the model's vocab_size is 300, so ids 269..299 have no token at all.
std::unique_ptr<Tokenizer> tinyGlmTokenizer(const QString& dir) {
    nlohmann::json vocab = nlohmann::json::object();
    int next = 256;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        const int cp = printable ? b : next++;
        std::string u;  // the code point as UTF-8 (at most U+0143 here: two bytes)
        if (cp < 0x80) {
            u += char(cp);
        } else {
            u += char(0xC0 | (cp >> 6));
            u += char(0x80 | (cp & 0x3F));
        }
        vocab[u] = b;
    }
    nlohmann::json added = nlohmann::json::array();
    int id = 256;
    for (const char* t : {"[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>",
                          "<|begin_of_image|>", "<|end_of_image|>", "<|image|>", "<|begin_of_video|>",
                          "<|end_of_video|>", "<think>", "</think>"}) {
        const bool special = std::string(t) != "<think>" && std::string(t) != "</think>";
        added.push_back({{"id", id++}, {"content", t}, {"special", special}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", false}, {"single_word", false}});
    }
    const nlohmann::json tj{{"added_tokens", added},
                            {"decoder", {{"type", "ByteLevel"}}},
                            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
                            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}};
    QFile f(dir + "/tokenizer.json");
    if (!f.open(QIODevice::WriteOnly)) return nullptr;
    f.write(QByteArray::fromStdString(tj.dump()));
    f.close();
    QFile c(dir + "/tokenizer_config.json");
    if (!c.open(QIODevice::WriteOnly)) return nullptr;
    c.write(R"({"add_bos_token": false, "eos_token": "<|endoftext|>"})");
    c.close();
    auto t = Tokenizer::fromHfFolder(dir.toStdString());
    return t ? std::move(*t) : nullptr;
}

/// Answers each request at once, on the caller's thread, with the latencies of its position among the measured
/// requests (1-based): e2e = k ms, TTFT = k/2 ms; every `failEvery`-th one fails.
class ScriptedTarget : public BenchTarget {
public:
    int warmup = 1;
    int failEvery = 0;
    bool reportPrompt = true;  // false: usage.promptTokens = -1, a server that reports no usage
    std::vector<BenchRequest> seen;
    std::string name() const override { return "scripted"; }
    void start(const BenchRequest& r, std::function<void(const Event&)> onEvent) override {
        seen.push_back(r);
        const int k = int(seen.size()) - warmup;  // <= 0: a warm-up request
        Event e;
        e.type = EventType::Finished;
        e.reason = StopReason::Length;
        if (failEvery > 0 && k > 0 && k % failEvery == 0) {
            e.type = EventType::Error;
            e.reason = StopReason::Error;
            e.text = "scripted failure " + std::to_string(k);
        } else {
            e.usage.promptTokens = reportPrompt ? int64_t(r.promptTokens.size()) : -1;
            e.usage.completionTokens = r.maxTokens;
            e.timings.e2eMs = std::max(k, 1);
            e.timings.ttftMs = e.timings.e2eMs / 2;
            e.timings.interTokenMs.assign(size_t(std::max<int64_t>(r.maxTokens - 1, 0)), 1.0);
        }
        onEvent(e);
    }
};

/// Answers each request from a thread of its own after `delayMs`, counting how many are in flight at once.
class SlowTarget : public BenchTarget {
public:
    explicit SlowTarget(int delayMs) : m_delayMs(delayMs) {}
    ~SlowTarget() override {
        for (auto& t : m_threads) t.join();
    }
    std::atomic<int> inFlight{0}, maxInFlight{0}, started{0};
    std::string name() const override { return "slow"; }
    void start(const BenchRequest& r, std::function<void(const Event&)> onEvent) override {
        const int now = ++inFlight;
        ++started;
        int m = maxInFlight.load();
        while (now > m && !maxInFlight.compare_exchange_weak(m, now)) {
        }
        std::lock_guard lock(m_mutex);
        m_threads.emplace_back([this, n = r.maxTokens, onEvent] {
            std::this_thread::sleep_for(std::chrono::milliseconds(m_delayMs));
            Event e;
            e.type = EventType::Finished;
            e.usage.completionTokens = n;
            e.timings.e2eMs = m_delayMs;
            e.timings.ttftMs = 1;
            --inFlight;
            onEvent(e);
        });
    }

private:
    int m_delayMs;
    std::mutex m_mutex;
    std::vector<std::thread> m_threads;
};

bool near(double a, double b, double eps = 1e-9) { return std::fabs(a - b) <= eps * std::max(1.0, std::fabs(b)); }

}  // namespace

class TestLoadTest : public QObject {
    Q_OBJECT

private slots:
    // numpy.percentile(range(1, 101), [50, 90, 99]) = 50.5, 90.1, 99.01; numpy.std(..., ddof=1) = 29.0114919759.
    void summaryOfKnownValues() {
        std::vector<double> v(100);
        std::iota(v.begin(), v.end(), 1.0);
        std::shuffle(v.begin(), v.end(), std::mt19937(7));  // order must not matter
        const Summary s = summarize(v);
        QVERIFY2(near(s.mean, 50.5), qPrintable(QString::number(s.mean)));
        QVERIFY2(near(s.stddev, 29.011491975882016), qPrintable(QString::number(s.stddev, 'g', 17)));
        QVERIFY2(near(s.p50, 50.5), qPrintable(QString::number(s.p50)));
        QVERIFY2(near(s.p90, 90.1), qPrintable(QString::number(s.p90)));
        QVERIFY2(near(s.p99, 99.01), qPrintable(QString::number(s.p99)));
        QCOMPARE(s.min, 1.0);
        QCOMPARE(s.max, 100.0);
        // Few samples: P99 of {10, 20, 30, 40} interpolates between 30 and 40 (numpy: 39.7), not the max.
        const Summary f = summarize({40, 10, 30, 20});
        QVERIFY(near(f.p50, 25) && near(f.p90, 37) && near(f.p99, 39.7));
        const Summary one = summarize({7});
        QVERIFY(one.p50 == 7 && one.p99 == 7 && one.stddev == 0 && one.mean == 7);
        const Summary none = summarize({});
        QVERIFY(none.p99 == 0 && none.mean == 0 && none.max == 0);
    }

    // 100 measured requests with e2e 1..100 ms and TTFT half of it: the result's percentiles are those of 1..100,
    // the token counts those asked for, the warm-up request is neither counted nor measured.
    void loadTestOfScriptedLatencies() {
        ScriptedTarget t;
        LoadTestOptions o;
        o.concurrency = 1;
        o.numRequests = 100;
        o.inputTokens = 12;
        o.outputTokens = 5;
        o.vocabSize = 1000;
        o.warmupRequests = 1;
        const LoadTestResult r = runLoadTest(t, o);
        QCOMPARE(r.requests, 100);
        QCOMPARE(r.errors, 0);
        QCOMPARE(int(t.seen.size()), 101);
        QCOMPARE(t.seen[0].maxTokens, int64_t(5));  // the warm-up: min(output, 8)
        for (const BenchRequest& b : t.seen) {
            QCOMPARE(b.promptTokens.size(), size_t(12));
            for (int32_t id : b.promptTokens) QVERIFY(id >= 100 && id < 1000);
        }
        QCOMPARE(r.outputTokens, int64_t(100 * 5));
        QCOMPARE(r.promptTokens, int64_t(100 * 12));
        QCOMPARE(r.promptTokensReported, 100);
        QCOMPARE(r.promptTokensMin, int64_t(12));
        QCOMPARE(r.promptTokensMax, int64_t(12));
        QVERIFY(!r.textPrompts);
        QVERIFY(near(r.e2eMs.p50, 50.5) && near(r.e2eMs.p90, 90.1) && near(r.e2eMs.p99, 99.01));
        QVERIFY(near(r.e2eMs.mean, 50.5) && r.e2eMs.min == 1 && r.e2eMs.max == 100);
        QVERIFY(near(r.ttftMs.p50, 25.25) && near(r.ttftMs.p99, 49.505));
        // TPOT per request: (e2e - TTFT) / (5 - 1) = k / 8; its mean over k = 1..100 is 50.5 / 8.
        QVERIFY2(near(r.tpotMs.mean, 50.5 / 8), qPrintable(QString::number(r.tpotMs.mean)));
        QVERIFY(near(r.itlMs.mean, 1.0) && r.itlMs.max == 1.0);
        QCOMPARE(r.e2eSamplesMs.size(), size_t(100));
        QVERIFY(near(r.outputTokensPerSecond, 500 / r.wallSeconds, 1e-6));
        QVERIFY(near(r.requestsPerSecond, 100 / r.wallSeconds, 1e-6));
        // The same seed gives the same prompts; another concurrency level, other prompts (a prefix cache must not
        // answer a later level from an earlier one).
        ScriptedTarget again;
        runLoadTest(again, o);
        QCOMPARE(again.seen[5].promptTokens, t.seen[5].promptTokens);
        ScriptedTarget other;
        o.concurrency = 2;
        runLoadTest(other, o);
        QVERIFY(other.seen[5].promptTokens != t.seen[5].promptTokens);
    }

    // Every 10th request fails: 10 errors, the first one's message, and summaries over the 90 that finished.
    void errorsAreCountedNotMeasured() {
        ScriptedTarget t;
        t.failEvery = 10;
        LoadTestOptions o;
        o.numRequests = 100;
        o.inputTokens = 4;
        o.outputTokens = 3;
        const LoadTestResult r = runLoadTest(t, o);
        QCOMPARE(r.requests, 100);
        QCOMPARE(r.errors, 10);
        QCOMPARE(r.firstError, std::string("scripted failure 10"));
        QCOMPARE(r.e2eSamplesMs.size(), size_t(90));
        QCOMPARE(r.outputTokens, int64_t(90 * 3));
        QCOMPARE(r.e2eMs.max, 99.0);
        // Mean of 1..100 without the multiples of 10: (5050 - 550) / 90 = 50.
        QVERIFY2(near(r.e2eMs.mean, 50.0), qPrintable(QString::number(r.e2eMs.mean)));
    }

    // Closed loop at concurrency 4: never more than 4 requests in flight, and 4 reached.
    void concurrencyIsTheCapInFlight() {
        SlowTarget t(20);
        LoadTestOptions o;
        o.concurrency = 4;
        o.numRequests = 24;
        o.inputTokens = 4;
        o.outputTokens = 2;
        o.warmupRequests = 0;
        const LoadTestResult r = runLoadTest(t, o);
        QCOMPARE(r.requests, 24);
        QCOMPARE(r.errors, 0);
        QCOMPARE(t.started.load(), 24);
        QCOMPARE(t.maxInFlight.load(), 4);
        // 24 requests of 20 ms, 4 at a time: at least 6 rounds.
        QVERIFY2(r.wallSeconds >= 0.115, qPrintable(QString::number(r.wallSeconds)));
    }

    // The table and the CSV carry the comparison file's numbers: TTFT and P99 at the lowest level, the best
    // tokens/s over the levels, the run's max stable concurrency, every level's figures in the CSV.
    void reportsCarryTheJsonNumbers() {
        ScriptedTarget t1, t2;
        LoadTestOptions o;
        o.numRequests = 100;
        o.inputTokens = 8;
        o.outputTokens = 4;
        const LoadTestResult r1 = runLoadTest(t1, o);
        o.concurrency = 2;
        t2.failEvery = 50;
        const LoadTestResult r2 = runLoadTest(t2, o);
        nlohmann::json l1 = loadTestJson(r1, true), l2 = loadTestJson(r2, false);
        QCOMPARE(l1["e2e_ms"]["p99"].get<double>(), r1.e2eMs.p99);
        QCOMPARE(l2["errors"].get<int>(), 2);
        QCOMPARE(l2["within_limit"].get<bool>(), false);
        QCOMPARE(l1["e2e_samples_ms"].size(), size_t(100));
        // Throughputs chosen so the best is the second level's.
        l1["output_tokens_per_s"] = 123.456;
        l2["output_tokens_per_s"] = 234.5;
        nlohmann::json run{{"engine", "scripted"}, {"precision", "fp16"}, {"input_tokens", 8}, {"output_tokens", 4},
                           {"max_stable_concurrency", 1}, {"results", {l2, l1}},
                           {"memory", {{"peak_bytes", 2.5e9}, {"source", "test"}}}};
        const nlohmann::json doc{{"format", "wb-bench-comparison"}, {"version", 1}, {"runs", {run}}};

        const std::string md = comparisonMarkdown(doc);
        char row[256];
        std::snprintf(row, sizeof row, "| scripted (fp16) | %.1f ± %.1f | 234.5 | 1 | 2.50 | %.1f |", r1.ttftMs.mean,
                      r1.ttftMs.stddev, r1.e2eMs.p99);
        QVERIFY2(md.find(row) != std::string::npos, qPrintable(QString::fromStdString(row + ("\n" + md))));
        QVERIFY2(md.find("scripted (fp16) at concurrency 2: 2 errors (scripted failure 50)") != std::string::npos,
                 md.c_str());

        const std::string csv = comparisonCsv(doc);
        std::vector<std::string> lines;
        for (size_t p = 0, n; p < csv.size(); p = n + 1) {
            n = csv.find('\n', p);
            if (n == std::string::npos) n = csv.size();
            lines.push_back(csv.substr(p, n - p));
        }
        QCOMPARE(lines.size(), size_t(3));  // the header and one line per level, in the file's order
        auto fields = [](const std::string& line) {
            QStringList f = QString::fromStdString(line).split(',');
            return f;
        };
        const QStringList head = fields(lines[0]);
        auto at = [&](const std::string& line, const char* column) {
            return fields(line).value(int(head.indexOf(QString(column))));
        };
        for (const auto& [line, level, res] : {std::tuple{lines[1], l2, &r2}, std::tuple{lines[2], l1, &r1}}) {
            QCOMPARE(at(line, "concurrency").toInt(), level["concurrency"].get<int>());
            QCOMPARE(at(line, "errors").toInt(), level["errors"].get<int>());
            const double tps = level["output_tokens_per_s"].get<double>();
            for (const auto& [col, want] : {std::pair{"ttft_mean_ms", res->ttftMs.mean},
                                            std::pair{"ttft_p99_ms", res->ttftMs.p99},
                                            std::pair{"e2e_p50_ms", res->e2eMs.p50},
                                            std::pair{"e2e_p90_ms", res->e2eMs.p90},
                                            std::pair{"e2e_p99_ms", res->e2eMs.p99},
                                            std::pair{"tpot_mean_ms", res->tpotMs.mean},
                                            std::pair{"output_tokens_per_s", tps}})
                QVERIFY2(std::fabs(at(line, col).toDouble() - want) <= 0.0005,
                         qPrintable(QString("%1: %2 vs %3").arg(col, at(line, col)).arg(want)));
            QCOMPARE(at(line, "max_stable_concurrency"), QString("1"));
            QCOMPARE(at(line, "peak_memory_gb"), QString("2.50"));
        }
        QCOMPARE(at(lines[1], "error"), QString("scripted failure 50"));
    }

    // A target that reports no prompt count is recorded as such: no count, null in the JSON, never the length asked.
    void unreportedPromptCountsAreNotFilledIn() {
        ScriptedTarget t;
        t.reportPrompt = false;
        LoadTestOptions o;
        o.numRequests = 4;
        o.inputTokens = 16;
        o.outputTokens = 2;
        const LoadTestResult r = runLoadTest(t, o);
        QCOMPARE(r.errors, 0);
        QCOMPARE(r.promptTokensReported, 0);
        QCOMPARE(r.promptTokens, int64_t(0));
        const nlohmann::json j = loadTestJson(r, true);
        QVERIFY(j["prompt_tokens_per_request"].is_null());
        QCOMPARE(j["prompt_tokens_reported"].get<int>(), 0);
    }

    // The defect this guards against, on the tiny GLM's byte vocabulary: 32 random ids from [100, 300) are not 32
    // tokens of text. Ids 256.. decode to nothing (added tokens are skipped, 269..299 are no token), and most bytes
    // >= 0x80 are not UTF-8 on their own: kept as bytes in process they are one token each, while a JSON request
    // carries each as U+FFFD, three bytes, three tokens here.
    void randomIdsDoNotSurviveText() {
        QTemporaryDir dir;
        auto tok = tinyGlmTokenizer(dir.path());
        QVERIFY(tok);
        std::mt19937_64 rng(1);
        std::uniform_int_distribution<int32_t> d(100, 299);
        int64_t inProcess = 0, overJson = 0;
        for (int i = 0; i < 8; ++i) {
            std::vector<int32_t> ids(32);
            for (auto& id : ids) id = d(rng);
            const std::string text = tok->decode(ids);
            inProcess += int64_t(tok->encode(text, false, SpecialTokens::Plain).size());
            const std::string json = nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            const std::string carried = nlohmann::json::parse(json).get<std::string>();
            overJson += int64_t(tok->encode(carried, false, SpecialTokens::Plain).size());
        }
        qInfo("32 random ids from [100, 300), 8 prompts: %.1f tokens a prompt as bytes, %.1f after JSON",
              double(inProcess) / 8, double(overJson) / 8);
        QVERIFY2(inProcess < 8 * 32, qPrintable(QString::number(inProcess)));
        QVERIFY2(overJson > inProcess + 8 * 10, qPrintable(QString("%1 vs %2").arg(overJson).arg(inProcess)));
    }

    // RoundTripPrompts for each tokenizer kind: n tokens, printable ASCII, encoding back to the same ids.
    void roundTripPromptsForEachTokenizerKind() {
        QTemporaryDir dir;
        std::vector<std::pair<std::string, std::unique_ptr<Tokenizer>>> toks;
        toks.emplace_back("tiny GLM byte-level BPE", tinyGlmTokenizer(dir.path()));
        for (const char* rel : {"models/stories260K/stories260K.gguf", "tokenizers/goldens/ggml-vocab-gpt-2.gguf",
                                "tokenizers/goldens/ggml-vocab-llama-spm.gguf", "models/stories260K/hf"}) {
            WB_REQUIRE_FIXTURE(rel);
            auto t = Tokenizer::fromModelPath(wbtest::fixture(rel));
            QVERIFY2(t, t ? "" : t.error().message.c_str());
            toks.emplace_back(rel, std::move(*t));
        }
        for (const auto& [name, tok] : toks) {
            QVERIFY2(tok, name.c_str());
            const RoundTripPrompts p(*tok);
            QVERIFY2(p.usable(), name.c_str());
            for (uint64_t seed = 1; seed <= 12; ++seed) {
                for (int64_t n : {1, 5, 32, 128}) {
                    std::mt19937_64 rng(seed);
                    const std::vector<int32_t> ids = p.make(rng, n);
                    const std::string text = tok->decode(ids);
                    const QString what = QString("%1, seed %2, n %3: '%4'")
                                             .arg(QString::fromStdString(name))
                                             .arg(seed)
                                             .arg(n)
                                             .arg(QString::fromStdString(text).left(80));
                    QVERIFY2(int64_t(ids.size()) == n, qPrintable(what));
                    QVERIFY2(p.roundTrips(ids), qPrintable(what));
                    QVERIFY2(tok->encode(text, false, SpecialTokens::Plain) == ids, qPrintable(what));
                    for (unsigned char c : text) QVERIFY2(c >= 0x20 && c < 0x7F, qPrintable(what));
                    std::mt19937_64 again(seed);
                    QVERIFY2(p.make(again, n) == ids, qPrintable(what));  // deterministic
                }
            }
        }
        // The stories260K GGUF and its HF folder are one vocabulary: the same seed draws the same prompt.
        std::mt19937_64 a(7), b(7);
        QCOMPARE(RoundTripPrompts(*toks[1].second).make(a, 64), RoundTripPrompts(*toks[4].second).make(b, 64));
    }

    // A text workload draws its prompts that way; the same seed and level give the same prompts again.
    void loadTestDrawsRoundTripPrompts() {
        QTemporaryDir dir;
        auto tok = tinyGlmTokenizer(dir.path());
        QVERIFY(tok);
        ScriptedTarget t;
        LoadTestOptions o;
        o.numRequests = 8;
        o.inputTokens = 32;
        o.outputTokens = 2;
        o.vocabSize = 300;
        o.textPrompts = tok.get();
        const LoadTestResult r = runLoadTest(t, o);
        QVERIFY(r.textPrompts);
        QCOMPARE(r.promptTokens, int64_t(8 * 32));
        const RoundTripPrompts p(*tok);
        for (const BenchRequest& b : t.seen) {
            QCOMPARE(b.promptTokens.size(), size_t(32));
            QVERIFY(p.roundTrips(b.promptTokens));
        }
        ScriptedTarget again;
        runLoadTest(again, o);
        QCOMPARE(again.seen[3].promptTokens, t.seen[3].promptTokens);
        QVERIFY(loadTestJson(r, true)["round_trip_prompts"].get<bool>());
    }

    // Runs of one workload whose own prompt counts differ by more than two tokens a request: the comparison says so,
    // in its file and under its table; within two, or for runs recorded before counts were kept, it says nothing.
    void comparisonWarnsWhenPromptCountsDiffer() {
        auto run = [](const std::string& label, nlohmann::json perRequest, int conc = 1) {
            return nlohmann::json{{"label", label}, {"input_tokens", 32}, {"output_tokens", 16}, {"seed", 1},
                                  {"images", {{{"file", "llama_cute.jpg"}}}}, {"max_stable_concurrency", conc},
                                  {"results", {{{"concurrency", conc}, {"requests", 8}, {"errors", 0},
                                                {"ttft_ms", {{"mean", 1.0}}}, {"e2e_ms", {{"p99", 2.0}}},
                                                {"prompt_tokens_per_request", perRequest}}}}};
        };
        auto doc = [](std::vector<nlohmann::json> runs) {
            return nlohmann::json{{"format", "wb-bench-comparison"}, {"version", 1}, {"runs", runs}};
        };
        // The image workload as it was: 58.5 in process, 97.5 at Transformers.
        const nlohmann::json before = doc({run("workbench (fp32)", 58.5), run("HF Transformers (fp32)", 97.5)});
        const std::vector<std::string> w = promptTokenWarnings(before);
        QCOMPARE(w.size(), size_t(1));
        QVERIFY2(w[0].find("workbench (fp32) 58.5") != std::string::npos &&
                     w[0].find("HF Transformers (fp32) 97.5") != std::string::npos &&
                     w[0].find("chat template") != std::string::npos && w[0].find("concurrency 1") != std::string::npos,
                 w[0].c_str());
        QVERIFY(comparisonMarkdown(before).find("**Warning:** prompt tokens per request differ") != std::string::npos);
        // Within two tokens (a template's odd token): no warning; other levels or workloads are not compared.
        QVERIFY(promptTokenWarnings(doc({run("a", 65.0), run("b", 67.0)})).empty());
        QVERIFY(promptTokenWarnings(doc({run("a", 65.0), run("b", 97.5, 4)})).empty());
        nlohmann::json other = run("b", 97.5);
        other["input_tokens"] = 64;
        QVERIFY(promptTokenWarnings(doc({run("a", 65.0), other})).empty());
        // A target that reported none, beside one that did.
        const std::vector<std::string> u = promptTokenWarnings(doc({run("a", 65.0), run("silent", nullptr)}));
        QCOMPARE(u.size(), size_t(1));
        QVERIFY2(u[0].find("not reported by silent") != std::string::npos, u[0].c_str());
        // Runs written before counts were recorded: nothing to compare.
        nlohmann::json old = run("old", 0.0);
        old["results"][0].erase("prompt_tokens_per_request");
        QVERIFY(promptTokenWarnings(doc({run("a", 65.0), old})).empty());

        // appendRun keeps the warnings in the file, recomputed with each run.
        QTemporaryDir dir;
        const std::string file = (dir.path() + "/cmp.json").toStdString();
        QVERIFY(appendRun(file, run("workbench (fp32)", 58.5)));
        auto one = loadComparison(file);
        QVERIFY(one && !one->contains("prompt_token_warnings"));
        QVERIFY(appendRun(file, run("HF Transformers (fp32)", 97.5)));
        auto two = loadComparison(file);
        QVERIFY(two);
        QCOMPARE((*two)["prompt_token_warnings"].size(), size_t(1));
    }
};

QTEST_GUILESS_MAIN(TestLoadTest)
#include "tst_load_test.moc"
