// GGUF (interleaved rotary rows, llama.cpp names) and HF folders (rotate-half rows) written from the same seed by
// wb-make-model load to the same numbers, for Llama-shaped GQA models and Qwen2-style ones (QKV bias, tied
// embeddings); a Q8_0 GGUF stays close to them. Also the llama3 rope-scaling frequencies.
#include <QtTest>
#include <cmath>

#include "fixtures.h"
#include "models/decoder/llama_model.h"

namespace {

QString makeModelExe() {
#ifdef WB_MAKE_MODEL
    return QStringLiteral(WB_MAKE_MODEL);  // a build dependency: missing is a failure, not a skip
#else
    const QString p = QCoreApplication::applicationDirPath() + "/../engine/wb-make-model";
    return QFileInfo::exists(p) ? p : QString();
#endif
}

bool makeModel(const QStringList& args) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(makeModelExe(), args);
    const bool ok = p.waitForFinished(300000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    if (!ok) qWarning("wb-make-model failed: %s", p.readAll().constData());
    return ok;
}

std::vector<float> logitsOf(const std::string& path, const std::vector<int32_t>& ids) {
    wb::LoadOptions o;
    o.numThreads = 2;
    auto m = wb::LlamaModel::load(path, o);
    if (!m) {
        qWarning("load %s: %s", path.c_str(), m.error().message.c_str());
        return {};
    }
    wb::KvCache cache((*m)->config(), int64_t(ids.size()));
    std::vector<float> out(ids.size() * size_t((*m)->config().vocabSize));
    if (!(*m)->forward(ids, 0, cache, out.data(), wb::LogitsMode::All)) return {};
    return out;
}

double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d;
}

double maxAbs(const std::vector<float>& a) {
    double d = 0;
    for (float x : a) d = std::max(d, double(std::fabs(x)));
    return d;
}

}  // namespace

class TestModelLayouts : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        if (makeModelExe().isEmpty()) QSKIP("wb-make-model is not built in this tree");
        WB_REQUIRE_FIXTURE("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
        WB_REQUIRE_FIXTURE("tokenizers/llama2/tokenizer.model");
    }

    void ggufAndHfAgree_data() {
        QTest::addColumn<QStringList>("shape");
        // Small widths keep the files small; the 32000-token vocab is the Llama 2 tokenizer's.
        const QStringList base = {"--dim", "128", "--layers", "2", "--ffn", "320", "--vocab", "32000", "--ctx", "256"};
        QTest::newRow("llama-gqa") << (base + QStringList{"--heads", "8", "--kv-heads", "2"});
        QTest::newRow("llama-mha") << (base + QStringList{"--heads", "4", "--kv-heads", "4"});
        QTest::newRow("qwen2-bias-tied") << (base + QStringList{"--heads", "8", "--kv-heads", "2", "--qkv-bias", "--tied"});
    }
    void ggufAndHfAgree() {
        QFETCH(QStringList, shape);
        const QString dir = QString::fromStdString(wbtest::tempDir()) + "/layouts-" + QTest::currentDataTag();
        QDir().mkpath(dir);
        const QString spm = QString::fromStdString(wbtest::fixture("tokenizers/goldens/ggml-vocab-llama-spm.gguf"));
        const QString sp = QString::fromStdString(wbtest::fixture("tokenizers/llama2/tokenizer.model"));
        QVERIFY(makeModel(shape + QStringList{"--seed", "7", "--format", "gguf", "--dtype", "f32", "--out",
                                              dir + "/m.gguf", "--tokenizer-from", spm}));
        QVERIFY(makeModel(shape + QStringList{"--seed", "7", "--format", "gguf", "--dtype", "q8_0", "--out",
                                              dir + "/m-q8.gguf", "--tokenizer-from", spm}));
        QVERIFY(makeModel(shape + QStringList{"--seed", "7", "--format", "hf", "--dtype", "f32", "--shards", "2", "--out",
                                              dir + "/hf", "--tokenizer-from", sp}));
        const std::vector<int32_t> ids = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889};
        const auto g = logitsOf((dir + "/m.gguf").toStdString(), ids);
        const auto h = logitsOf((dir + "/hf").toStdString(), ids);
        const auto q = logitsOf((dir + "/m-q8.gguf").toStdString(), ids);
        QVERIFY(!g.empty() && g.size() == h.size() && g.size() == q.size());
        // The same f32 weights through the same kernels: equal up to summation order.
        QVERIFY2(maxAbsDiff(g, h) <= 1e-4 * std::max(1.0, maxAbs(g)),
                 qPrintable(QString("GGUF vs HF max |diff| %1 (max |logit| %2)").arg(maxAbsDiff(g, h)).arg(maxAbs(g))));
        // Q8_0 weights and activations: within a few percent of the largest logit.
        const double rel = maxAbsDiff(g, q) / maxAbs(g);
        qInfo("%s: GGUF/HF max diff %.2e, Q8_0 relative diff %.4f", QTest::currentDataTag(), maxAbsDiff(g, h), rel);
        QVERIFY2(rel <= 0.05, qPrintable(QString("Q8_0 relative diff %1").arg(rel)));
    }

    void llama3RopeScaling() {
        // HF's _compute_llama3_parameters with Llama 3.1's numbers, evaluated independently here.
        wb::ModelConfig c;
        c.headDim = 128;
        c.ropeTheta = 500000.0f;
        c.ropeScaling.type = wb::RopeScaling::Type::Llama3;
        c.ropeScaling.factor = 8;
        c.ropeScaling.lowFreqFactor = 1;
        c.ropeScaling.highFreqFactor = 4;
        c.ropeScaling.originalMaxPositions = 8192;
        const auto inv = c.ropeInvFreq();
        QCOMPARE(inv.size(), size_t(64));
        int kept = 0, divided = 0, blended = 0;
        for (int i = 0; i < 64; ++i) {
            const double f = 1.0 / std::pow(500000.0, 2.0 * i / 128.0);
            const double wavelen = 2 * M_PI / f;
            double want;
            if (wavelen < 8192.0 / 4) {
                want = f;
                ++kept;
            } else if (wavelen > 8192.0 / 1) {
                want = f / 8;
                ++divided;
            } else {
                const double smooth = (8192.0 / wavelen - 1) / (4 - 1);
                want = (1 - smooth) * f / 8 + smooth * f;
                ++blended;
            }
            QVERIFY2(std::fabs(inv[size_t(i)] - want) <= 1e-6 * want, qPrintable(QString("dim %1").arg(i)));
        }
        QVERIFY(kept > 0 && divided > 0 && blended > 0);  // all three branches exercised

        c.ropeScaling.type = wb::RopeScaling::Type::Linear;
        c.ropeScaling.factor = 4;
        const auto lin = c.ropeInvFreq();
        QVERIFY(std::fabs(lin[1] - float(1.0 / std::pow(500000.0, 2.0 / 128.0) / 4)) < 1e-9);
    }
};

QTEST_GUILESS_MAIN(TestModelLayouts)
#include "tst_model_layouts.moc"
