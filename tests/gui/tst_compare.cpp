// The Compare view driven through its real widgets (offscreen): the stories260K fixture in process at two
// precisions, `wb serve` over HTTP through the generic plugin, and an unreachable vLLM URL; the table and charts
// fill, the run saves and reloads (and a file written by `wb bench --append-to` opens too), PNG/CSV/Markdown
// exports are written, a run is cancelled, and the screenshot compare.png is taken (into docs/screenshots only
// with WB_WRITE_SCREENSHOTS=1, see screenshots.h).
#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLineEdit>
#include <QProcess>
#include <QProcessEnvironment>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <memory>
#include <qcustomplot.h>

#include "app/compare_view.h"
#include "app/main_window.h"
#include "fixtures.h"
#include "screenshots.h"
#include "models/glm/glm_tiny.h"
#include "serve_process.h"

using namespace wbgui;

namespace {
const char* kModel = "models/stories260K/stories260K.gguf";
}  // namespace

class TstCompare : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_tmp;
    std::unique_ptr<MainWindow> m_window;
    wbtest::ServeProcess m_serve;
    CompareView* m_view = nullptr;

    void takeScreenshot() {
        m_window->tabs()->setCurrentWidget(m_view);
        QApplication::processEvents();
        wbtest::saveScreenshot(m_window.get(), "compare");
    }

    template <typename T>
    T* child(const char* name) {
        T* w = m_view->findChild<T*>(QString::fromLatin1(name));
        if (!w) qFatal("no widget %s", name);
        return w;
    }
    QString cell(int row, int col) {
        auto* item = m_view->resultsTable()->item(row, col);
        return item ? item->text() : QString();
    }
    void addEngine(const QString& precision) {
        child<QComboBox>("comparePrecision")->setCurrentText(precision);
        QTest::mouseClick(child<QPushButton>("compareAddEngine"), Qt::LeftButton);
    }
    void addRemote(const QString& plugin, const QString& url) {
        auto* combo = child<QComboBox>("comparePlugin");
        combo->setCurrentIndex(combo->findData(plugin));
        QCOMPARE(combo->currentData().toString(), plugin);
        auto* edit = child<QLineEdit>("compareUrl");
        edit->clear();
        QTest::keyClicks(edit, url);
        QTest::mouseClick(child<QPushButton>("compareAddRemote"), Qt::LeftButton);
    }
    // One CSV line's fields (RFC 4180 quoting: "a, b" is one field, "" inside quotes is one quote).
    static QStringList csvFields(const QString& line) {
        QStringList out;
        QString f;
        bool quoted = false;
        for (int i = 0; i < line.size(); ++i) {
            const QChar c = line[i];
            if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') f += c, ++i;
            else if (c == '"') quoted = !quoted;
            else if (c == ',' && !quoted) out << f, f.clear();
            else f += c;
        }
        return out << f;
    }

    // The table, the Markdown and the CSV show the saved comparison's numbers, computed here from the JSON by the
    // rules the table states: TTFT and P99 at a run's lowest concurrency with answers, tokens/s the best level's,
    // max concurrency the run's; the CSV every level's figures to 3 decimals.
    void numbersMatchTheJson(const QJsonObject& comparison, const QString& md, const QString& csv) {
        const QJsonArray runs = comparison.value("runs").toArray();
        const QStringList lines = csv.split('\n', Qt::SkipEmptyParts);
        const QStringList head = csvFields(lines.value(0));
        int csvRowsChecked = 0;
        for (int i = 0; i < 3; ++i) {
            const QJsonArray levels = runs[i].toObject().value("results").toArray();
            QJsonObject low;
            double best = 0;
            for (const QJsonValue& v : levels) {
                const QJsonObject l = v.toObject();
                if (l.value("requests").toInt() <= l.value("errors").toInt()) continue;
                if (low.isEmpty() || l.value("concurrency").toInt() < low.value("concurrency").toInt()) low = l;
                best = std::max(best, l.value("output_tokens_per_s").toDouble());
            }
            QVERIFY2(!low.isEmpty(), qPrintable(QString("run %1 has no level with answers").arg(i)));
            const QString label = cell(i, CompareView::ColTarget);
            const QString ttft = QString("%1 ± %2")
                                     .arg(low["ttft_ms"].toObject()["mean"].toDouble(), 0, 'f', 1)
                                     .arg(low["ttft_ms"].toObject()["stddev"].toDouble(), 0, 'f', 1);
            const QString tps = QString::number(best, 'f', 1);
            const QString p99 = QString::number(low["e2e_ms"].toObject()["p99"].toDouble(), 'f', 1);
            // "≥N" when every level tried held: the limit was not found, only bounded from below.
            const int stable = runs[i].toObject().value("max_stable_concurrency").toInt();
            bool limitFound = false;
            for (const QJsonValue& v : levels) limitFound = limitFound || v.toObject().value("concurrency").toInt() > stable;
            const QString maxConc = (limitFound ? QString() : QString("≥")) + QString::number(stable);
            QCOMPARE(cell(i, CompareView::ColTtft), ttft);
            QCOMPARE(cell(i, CompareView::ColTokensPerSec), tps);
            QCOMPARE(cell(i, CompareView::ColP99), p99);
            QCOMPARE(cell(i, CompareView::ColMaxConc), maxConc);
            const QString row = QString("| %1 | %2 | %3 | %4 | ").arg(label, ttft, tps, maxConc);
            QVERIFY2(md.contains(row) && md.contains(QString(" | %1 |\n").arg(p99)), qPrintable(row + "\n" + md));
            for (const QString& line : lines.mid(1)) {
                const QStringList f = csvFields(line);
                auto at = [&](const char* col) { return f.value(int(head.indexOf(QString(col)))); };
                if (at("framework") != label) continue;
                const int conc = at("concurrency").toInt();
                for (const QJsonValue& v : levels) {
                    const QJsonObject l = v.toObject();
                    if (l.value("concurrency").toInt() != conc) continue;
                    const std::pair<const char*, double> cols[] = {
                        {"ttft_mean_ms", l["ttft_ms"].toObject()["mean"].toDouble()},
                        {"e2e_p50_ms", l["e2e_ms"].toObject()["p50"].toDouble()},
                        {"e2e_p99_ms", l["e2e_ms"].toObject()["p99"].toDouble()},
                        {"output_tokens_per_s", l["output_tokens_per_s"].toDouble()}};
                    for (const auto& [col, want] : cols) {
                        const QString why = QString("%1 at %2, %3: %4 vs %5").arg(label).arg(conc).arg(col, at(col));
                        QVERIFY2(std::abs(at(col).toDouble() - want) <= 0.0005, qPrintable(why.arg(want)));
                    }
                    ++csvRowsChecked;
                }
            }
        }
        QCOMPARE(csvRowsChecked, 3 * 2);
    }

    void checkTable() {
        QTableWidget* t = m_view->resultsTable();
        QCOMPARE(t->rowCount(), 4);
        QCOMPARE(cell(0, CompareView::ColTarget), QStringLiteral("workbench (fp32)"));
        QCOMPARE(cell(1, CompareView::ColTarget), QStringLiteral("workbench (int8)"));
        QCOMPARE(cell(2, CompareView::ColTarget), QStringLiteral("OpenAI-compatible (stories260K)"));
        for (int row = 0; row < 3; ++row) {
            QVERIFY2(cell(row, CompareView::ColTtft).contains(" ± "), qPrintable(cell(row, CompareView::ColTtft)));
            QVERIFY(cell(row, CompareView::ColTokensPerSec).toDouble() > 0);
            QCOMPARE(cell(row, CompareView::ColMaxConc), QStringLiteral("≥2"));  // 1 and 2 tried, both held
            QVERIFY(cell(row, CompareView::ColP99).toDouble() > 0);
        }
        // This engine's memory is what it holds: weights + KV cache, so fp32 and int8 differ by their weights
        // (the same KV cache), where the process's RSS growth showed the same figure for both.
        const QJsonArray runs = m_view->comparison().value("runs").toArray();
        const QJsonObject m32 = runs[0].toObject()["memory"].toObject(), m8 = runs[1].toObject()["memory"].toObject();
        QCOMPARE(m32["peak_bytes"].toDouble(), m32["weights_bytes"].toDouble() + m32["kv_cache_bytes"].toDouble());
        QCOMPARE(m8["peak_bytes"].toDouble(), m8["weights_bytes"].toDouble() + m8["kv_cache_bytes"].toDouble());
        QCOMPARE(m32["kv_cache_bytes"].toDouble(), m8["kv_cache_bytes"].toDouble());
        QVERIFY2(m32["weights_bytes"].toDouble() > 2.5 * m8["weights_bytes"].toDouble(),
                 qPrintable(QString("fp32 weights %1, int8 %2").arg(m32["weights_bytes"].toDouble())
                                .arg(m8["weights_bytes"].toDouble())));
        QVERIFY(m32["source"].toString().contains("weights"));
        QCOMPARE(cell(0, CompareView::ColMemory), QString::number(m32["peak_bytes"].toDouble() / 1e9, 'f', 3));
        // wb serve reports its peak memory and KV use; the generic plugin shows them.
        QVERIFY(cell(2, CompareView::ColMemory).toDouble() > 0);
        QVERIFY(cell(2, CompareView::ColKv).endsWith("%"));
        // Unreachable is shown as such, never as numbers.
        QCOMPARE(cell(3, CompareView::ColTtft), QStringLiteral("unreachable"));
        QCOMPARE(cell(3, CompareView::ColTokensPerSec), QStringLiteral("unreachable"));
        QCOMPARE(cell(3, CompareView::ColMemory), QStringLiteral("n/a"));
        QVERIFY2(cell(3, CompareView::ColStatus).contains("cannot be reached"), qPrintable(cell(3, CompareView::ColStatus)));
    }

    // The comparison saveReloadExport starts from: runSmallComparison's, run again when the function runs alone, so
    // every function passes on its own (./tst_compare saveReloadExport).
    void ensureSmallComparison() {
        if (m_view->comparison().value("runs").toArray().size() == 4) return;
        runSmallComparison();
    }

private slots:
    void initTestCase() {
        WB_REQUIRE_FIXTURE(kModel);
        QVERIFY(m_tmp.isValid());
        QVERIFY2(m_serve.start(WB_EXE, QString::fromStdString(wbtest::fixture(kModel))), qPrintable(m_serve.log()));
        m_window = std::make_unique<MainWindow>(m_tmp.path() + "/data");
        m_window->resize(1180, 760);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        m_view = m_window->compareView();
        QVERIFY(m_view);
        m_window->tabs()->setCurrentWidget(m_view);
    }

    void pluginsAreOffered() {
        QStringList ids;
        for (const auto& p : m_view->runner()->plugins()) ids << p.id;
        for (const char* id : {"openai", "vllm", "trtllm"}) QVERIFY2(ids.contains(id), qPrintable(ids.join(",")));
        QVERIFY(m_view->runner()->pluginProblems().isEmpty());
    }

    void runSmallComparison() {
        QTest::keyClicks(child<QLineEdit>("compareModelPath"), QString::fromStdString(wbtest::fixture(kModel)));
        addEngine("fp32");
        addEngine("int8");
        child<QSpinBox>("compareVocab")->setValue(512);  // stories260K's vocabulary
        addRemote("openai", m_serve.baseUrl());
        addRemote("vllm", "http://127.0.0.1:1/v1");
        QCOMPARE(m_view->targets().size(), 4);

        QTest::mouseClick(child<QPushButton>("comparePreset"), Qt::LeftButton);
        QCOMPARE(m_view->workload().inputTokens, 128);
        QCOMPARE(m_view->workload().outputTokens, 64);
        QCOMPARE(m_view->workload().concurrency, (QList<int>{1, 4, 8}));
        // Smaller than the article's, so the test takes seconds on a shared CPU.
        child<QSpinBox>("compareInput")->setValue(16);
        child<QSpinBox>("compareOutput")->setValue(8);
        child<QLineEdit>("compareConcurrency")->setText("1, 2");
        child<QSpinBox>("compareRequests")->setValue(4);

        QSignalSpy updated(m_view->runner(), &CompareRunner::targetUpdated);
        QSignalSpy done(m_view, &CompareView::runFinished);
        QTest::mouseClick(child<QPushButton>("compareRun"), Qt::LeftButton);
        QVERIFY(m_view->isRunning());
        QVERIFY(!child<QPushButton>("compareRun")->isEnabled());
        QVERIFY(done.wait(180000));
        QCOMPARE(done.first().first().toBool(), false);
        // Live: each reachable target reported after each level, before its final record.
        QVERIFY2(updated.size() >= 3 * 3 + 1, qPrintable(QString::number(updated.size())));
        checkTable();

        // Charts: a bar per target with numbers, a CDF and a throughput line per reachable target.
        QList<QCustomPlot*> plots = m_view->plots();
        auto* bars = qobject_cast<QCPBars*>(plots[0]->plottable(0));
        QVERIFY(bars);
        QCOMPARE(bars->data()->size(), 3);
        QCOMPARE(plots[1]->graphCount(), 3);
        QCOMPARE(plots[1]->graph(0)->data()->size(), 5);  // the origin and the 4 requests
        QCOMPARE(plots[2]->graphCount(), 3);
        QCOMPARE(plots[2]->graph(0)->data()->size(), 2);  // concurrency 1 and 2
    }

    void saveReloadExport() {
        ensureSmallComparison();
        if (QTest::currentTestFailed()) return;
        const QString file = m_tmp.filePath("comparison.json");
        QString error;
        QVERIFY2(m_view->saveFile(file, &error), qPrintable(error));
        const QJsonObject saved = m_view->comparison();
        QCOMPARE(saved.value("runs").toArray().size(), 4);
        const QString ttft = cell(0, CompareView::ColTtft);
        m_view->clearResults();
        QCOMPARE(m_view->resultsTable()->rowCount(), 0);
        QVERIFY2(m_view->loadFile(file, &error), qPrintable(error));
        checkTable();
        QCOMPARE(cell(0, CompareView::ColTtft), ttft);
        QCOMPARE(m_view->plots()[1]->graphCount(), 3);

        QVERIFY(m_view->exportPng(m_tmp.filePath("c.png")));
        QVERIFY(QImage(m_tmp.filePath("c.png")).width() > 400);
        QVERIFY(m_view->exportCsv(m_tmp.filePath("c.csv")));
        QVERIFY(m_view->exportMarkdown(m_tmp.filePath("c.md")));
        QFile md(m_tmp.filePath("c.md"));
        QVERIFY(md.open(QIODevice::ReadOnly));
        const QString mdText = QString::fromUtf8(md.readAll());
        QVERIFY2(mdText.contains("| framework | TTFT (ms) | tokens/s | max stable concurrency | memory (GB) | P99 (ms) |"),
                 qPrintable(mdText));
        QVERIFY(mdText.contains("| workbench (int8) |") && mdText.contains("unreachable"));
        QFile csv(m_tmp.filePath("c.csv"));
        QVERIFY(csv.open(QIODevice::ReadOnly));
        const QString csvText = QString::fromUtf8(csv.readAll());
        QCOMPARE(csvText.count('\n'), 1 + 3 * 2 + 1);  // header, 3 targets × 2 levels, 1
        numbersMatchTheJson(saved, mdText, csvText);
        takeScreenshot();
    }

    void cliFileOpens() {
        // The same format as wb bench --append-to: a CLI run opens in the view.
        const QString file = m_tmp.filePath("cli.json");
        QProcess p;
        p.setProcessChannelMode(QProcess::MergedChannels);
        p.start(WB_EXE, {"bench", "--target", "openai", "--url", m_serve.baseUrl(), "--concurrency", "1",
                         "--requests", "2", "--input", "16", "--output", "8", "--vocab-size", "512", "--label",
                         "wb serve via CLI", "--append-to", file});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAll().constData());
        QString error;
        QVERIFY2(m_view->loadFile(file, &error), qPrintable(error));
        QCOMPARE(m_view->resultsTable()->rowCount(), 1);
        QCOMPARE(cell(0, CompareView::ColTarget), QStringLiteral("wb serve via CLI"));
        QVERIFY(cell(0, CompareView::ColTtft).contains(" ± "));
        QVERIFY(!m_view->loadFile(m_tmp.filePath("c.csv"), &error));  // not a comparison: refused, view kept
        QCOMPARE(m_view->resultsTable()->rowCount(), 1);
    }

    void cancelStopsTheRun() {
        m_view->clearResults();
        if (m_view->targets().isEmpty()) {  // run alone: one engine target of its own
            QTest::keyClicks(child<QLineEdit>("compareModelPath"), QString::fromStdString(wbtest::fixture(kModel)));
            addEngine("fp32");
            child<QSpinBox>("compareVocab")->setValue(512);
            child<QSpinBox>("compareInput")->setValue(16);
        }
        // Remove every target but the first engine, then make its run long.
        auto* targets = m_view->findChild<QTableWidget*>("compareTargets");
        while (m_view->targets().size() > 1) {
            targets->selectRow(1);
            for (auto* b : m_view->findChildren<QPushButton*>())
                if (b->text() == "Remove") QTest::mouseClick(b, Qt::LeftButton);
        }
        child<QSpinBox>("compareOutput")->setValue(200);
        child<QLineEdit>("compareConcurrency")->setText("1, 2, 4");
        child<QSpinBox>("compareRequests")->setValue(500);
        QSignalSpy progress(m_view->runner(), &CompareRunner::progress);
        QSignalSpy done(m_view, &CompareView::runFinished);
        QTest::mouseClick(child<QPushButton>("compareRun"), Qt::LeftButton);
        QVERIFY(progress.wait(60000));
        QTest::mouseClick(child<QPushButton>("compareCancel"), Qt::LeftButton);
        QVERIFY(done.wait(60000));
        QCOMPARE(done.first().first().toBool(), true);
        QVERIFY2(cell(0, CompareView::ColStatus).contains("cancelled"), qPrintable(cell(0, CompareView::ColStatus)));
        QVERIFY(child<QPushButton>("compareRun")->isEnabled());
        // Cancelled is not failed: no cell says "error".
        for (int col = CompareView::ColTtft; col < CompareView::ColStatus; ++col)
            QVERIFY2(cell(0, col) != "error", qPrintable(QString("column %1").arg(col)));
        // A new run says it is running, not the last one's "Cancelled." / "Done.".
        QTest::mouseClick(child<QPushButton>("compareRun"), Qt::LeftButton);
        QVERIFY2(child<QLabel>("compareStatus")->text().startsWith("Running"),
                 qPrintable(child<QLabel>("compareStatus")->text()));
        QTest::mouseClick(child<QPushButton>("compareCancel"), Qt::LeftButton);
        QVERIFY(done.wait(60000));
    }

    // The phone agent's workload from the Compare view: a screenshot before each prompt, run in process on a tiny
    // GLM-4.1V; the run records the image and measures every request with its vision encoding.
    void imageWorkloadRun() {
        m_view->clearResults();
        auto* targets = m_view->findChild<QTableWidget*>("compareTargets");
        while (!m_view->targets().isEmpty()) {
            targets->selectRow(0);
            for (auto* b : m_view->findChildren<QPushButton*>())
                if (b->text() == "Remove") QTest::mouseClick(b, Qt::LeftButton);
        }
        const QString glm = m_tmp.path() + "/glm4v";
        QVERIFY(wb::writeTinyGlmCheckpoint(glm.toStdString()).ok());
        auto* modelPath = child<QLineEdit>("compareModelPath");
        modelPath->clear();
        QTest::keyClicks(modelPath, glm);
        addEngine("fp32");
        const QString shot = m_tmp.path() + "/screen.png";
        {
            QImage img(108, 240, QImage::Format_RGB888);
            img.fill(QColor(0x20, 0x40, 0x60));
            QVERIFY(img.save(shot));
        }
        child<QLineEdit>("compareImages")->setText(shot);
        child<QSpinBox>("compareInput")->setValue(12);
        child<QSpinBox>("compareOutput")->setValue(4);
        child<QLineEdit>("compareConcurrency")->setText("1, 2");
        child<QSpinBox>("compareRequests")->setValue(3);
        QCOMPARE(m_view->workload().images, QStringList{shot});
        QSignalSpy done(m_view, &CompareView::runFinished);
        QTest::mouseClick(child<QPushButton>("compareRun"), Qt::LeftButton);
        QVERIFY(done.wait(180000));
        const QJsonObject run = m_view->comparison()["runs"].toArray().last().toObject();
        QCOMPARE(run["images"].toArray().size(), 1);
        QCOMPARE(run["images"].toArray()[0].toObject()["height"].toInt(), 240);
        QVERIFY(run["distinct_images"].toBool());
        const QJsonArray results = run["results"].toArray();
        QCOMPARE(results.size(), 2);
        for (const QJsonValue& r : results) {
            QCOMPARE(r.toObject()["errors"].toInt(), 0);
            QCOMPARE(r.toObject()["requests"].toInt(), 3);
        }
        QCOMPARE(cell(0, CompareView::ColMaxConc), QStringLiteral("≥2"));
        child<QLineEdit>("compareImages")->clear();
    }

    // A restart finds the Compare view as it was: targets (API keys excepted), workload and the last results.
    void restartRemembersTheComparison() {
        if (m_view->targets().isEmpty()) runSmallComparison();  // run alone: some targets and results first
        if (QTest::currentTestFailed()) return;
        child<QSpinBox>("compareInput")->setValue(24);
        child<QLineEdit>("compareConcurrency")->setText("1, 3");
        const QList<CompareTargetSpec> targets = m_view->targets();
        const CompareWorkload w = m_view->workload();
        const QJsonArray runs = m_view->comparison().value("runs").toArray();
        QVERIFY(!targets.isEmpty() && !runs.isEmpty());
        const QString firstTtft = cell(0, CompareView::ColTtft);
        m_window->close();  // writes the state, as quitting does
        m_window = std::make_unique<MainWindow>(m_tmp.path() + "/data");
        m_view = m_window->compareView();
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
        QCOMPARE(m_view->targets().size(), targets.size());
        for (int i = 0; i < targets.size(); ++i) {
            QCOMPARE(m_view->targets()[i].kind, targets[i].kind);
            QCOMPARE(m_view->targets()[i].modelPath, targets[i].modelPath);
            QCOMPARE(m_view->targets()[i].precision, targets[i].precision);
            QCOMPARE(m_view->targets()[i].url, targets[i].url);
            QCOMPARE(m_view->targets()[i].pluginId, targets[i].pluginId);
            QCOMPARE(m_view->targets()[i].vocabSize, targets[i].vocabSize);
        }
        QCOMPARE(m_view->workload().inputTokens, qint64(24));
        QCOMPARE(m_view->workload().concurrency, (QList<int>{1, 3}));
        QCOMPARE(m_view->workload().outputTokens, w.outputTokens);
        QCOMPARE(m_view->workload().images, w.images);
        QCOMPARE(m_view->comparison().value("runs").toArray().size(), runs.size());
        QCOMPARE(cell(0, CompareView::ColTtft), firstTtft);
    }

    // The article's targets from the GUI (issue #18): "Article targets" on the stories260K GGUF (hf/ beside it)
    // sets this engine at FP32/BF16/INT8, HF Transformers at FP32/BF16 and llama.cpp on the GGUF, and the run
    // starts each server itself (tools/hf-serve/hf_serve.py, tools/llamacpp-yardstick/serve.mjs), measures it
    // through its plugin and stops it; the table gets rows with numbers for all three frameworks. Skipped where the
    // HF kit or the npm yardstick is not set up; CI=true (which sets both up: .ci/run) makes that a failure.
    void articleTargetsLaunchTheirServers() {
        const bool ci = qEnvironmentVariable("CI") == "true";
        auto unavailable = [&](const QString& why) {
            if (ci) QFAIL(qPrintable(why + " (CI=true: .ci/run sets it up)"));
            QSKIP(qPrintable(why));
        };
        QString python = qEnvironmentVariable("WB_HF_PYTHON");
        if (python.isEmpty())
            python = QFileInfo::exists("/usr/bin/python3") ? QStringLiteral("/usr/bin/python3") : QStringLiteral("python3");
        QProcess probe;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        QString site = qEnvironmentVariable("WB_HF_PYTHONPATH");
        if (site.isEmpty() && QFileInfo(QDir::homePath() + "/.cache/hf-reference/site").isDir())
            site = QDir::homePath() + "/.cache/hf-reference/site";
        if (!site.isEmpty()) env.insert("PYTHONPATH", site);
        probe.setProcessEnvironment(env);
        probe.setProcessChannelMode(QProcess::MergedChannels);
        probe.start(python, {"-c", "import torch, transformers"});
        // QSKIP / QFAIL inside the lambda only leave the lambda: each call is followed by a return, or the test
        // would go on to launch servers that cannot start (a worktree without the yardstick hung here).
        if (!probe.waitForFinished(120000) || probe.exitStatus() != QProcess::NormalExit || probe.exitCode() != 0)
            return unavailable(QStringLiteral("HF Transformers kit not set up (%1: import torch, transformers failed: "
                                              "%2); run bash ../shared/hf-reference/setup.sh")
                                   .arg(python, QString::fromUtf8(probe.readAll()).trimmed().right(200)));
        if (!QFileInfo::exists(WB_SOURCE_DIR "/tools/llamacpp-yardstick/node_modules/node-llama-cpp/package.json"))
            return unavailable(QStringLiteral("llama.cpp yardstick not set up: run bash tools/llamacpp-yardstick/setup.sh"));
        QProcess node;
        node.start("node", {"--version"});
        if (!node.waitForFinished(30000) || node.exitCode() != 0) return unavailable(QStringLiteral("node is not on PATH"));

        m_view->clearResults();
        child<QLineEdit>("compareModelPath")->setText(QString::fromStdString(wbtest::fixture(kModel)));
        QTest::mouseClick(child<QPushButton>("compareArticleTargets"), Qt::LeftButton);
        const QList<CompareTargetSpec> specs = m_view->targets();
        QStringList kinds;
        for (const CompareTargetSpec& s : specs)
            kinds << (s.kind == CompareTargetSpec::Kind::Engine ? "engine:" + s.precision
                                                                : s.pluginId + (s.launchCommand.isEmpty() ? "" : "+launch"));
        QCOMPARE(kinds, (QStringList{"engine:fp32", "engine:bf16", "engine:int8", "transformers+launch",
                                     "transformers+launch", "llamacpp+launch"}));
        QCOMPARE(specs[3].vocabSize, 512);  // from hf/config.json: the servers' prompt ids stay in stories260K's vocabulary
        QCOMPARE(m_view->workload().concurrency, (QList<int>{1, 4, 8}));
        QCOMPARE(m_view->workload().inputTokens, 128);
        // Smaller than the article's, so the test takes a minute on a shared CPU.
        child<QSpinBox>("compareInput")->setValue(32);
        child<QSpinBox>("compareOutput")->setValue(8);
        child<QLineEdit>("compareConcurrency")->setText("1, 2");
        child<QSpinBox>("compareRequests")->setValue(2);

        QSignalSpy done(m_view, &CompareView::runFinished);
        QTest::mouseClick(child<QPushButton>("compareRun"), Qt::LeftButton);
        QVERIFY(m_view->isRunning());
        QVERIFY(done.wait(600000));
        QCOMPARE(done.first().first().toBool(), false);

        const QJsonArray runs = m_view->comparison().value("runs").toArray();
        QCOMPARE(runs.size(), 6);
        QCOMPARE(m_view->resultsTable()->rowCount(), 6);
        QStringList frameworks;
        for (int r = 0; r < runs.size(); ++r) {
            const QJsonObject run = runs[r].toObject();
            const QString label = run.value("label").toString();
            QVERIFY2(!run.contains("error"), qPrintable(label + ": " + run.value("error").toString()));
            QCOMPARE(cell(r, CompareView::ColTarget), label);
            QVERIFY2(cell(r, CompareView::ColTtft).contains(" ± "), qPrintable(label + ": " + cell(r, CompareView::ColTtft)));
            QCOMPARE(run.value("results").toArray().size(), 2);
            for (const QJsonValue& level : run.value("results").toArray())
                QCOMPARE(level.toObject().value("errors").toInt(), 0);
            QVERIFY2(cell(r, CompareView::ColMemory).front().isDigit(), qPrintable(label + ": " + cell(r, CompareView::ColMemory)));
            frameworks << label.section(' ', 0, 0);
            if (!run.contains("launch")) continue;
            // The server the run started is gone, and its memory is its own report or its process's peak RSS.
            const int pid = run.value("launch").toObject().value("pid").toInt();
            QVERIFY(pid > 0);
            QVERIFY2(!QFileInfo::exists(QStringLiteral("/proc/%1/status").arg(pid)), qPrintable(label));
            const QString source = run.value("memory").toObject().value("source").toString();
            if (label.startsWith("HF")) QCOMPARE(source, QStringLiteral("hf_serve_peak_rss_bytes"));
            else QVERIFY2(source.startsWith("process peak RSS"), qPrintable(source));
        }
        frameworks.removeDuplicates();
        QCOMPARE(frameworks, (QStringList{"workbench", "HF", "llama.cpp"}));
    }

    // The article's table on this machine (docs/BENCHMARKS.md, made by tools/article-table): the committed
    // comparison of this engine, HF Transformers and llama.cpp opens with every row's numbers and a memory figure
    // with its source; its screenshot is compare-article.png.
    void articleTableOpens() {
        QString error;
        QVERIFY2(m_view->loadFile(QStringLiteral(WB_SOURCE_DIR "/docs/benchmarks/article-table.json"), &error),
                 qPrintable(error));
        const int rows = m_view->resultsTable()->rowCount();
        QVERIFY2(rows >= 3 && rows <= 7, qPrintable(QString::number(rows)));
        const QStringList known{"workbench (fp32)", "workbench (bf16)", "workbench (int8)", "HF Transformers (fp32)",
                                "HF Transformers (bf16)", "llama.cpp via node-llama-cpp (F16)",
                                "llama.cpp via node-llama-cpp (Q8_0)"};
        QStringList frameworks;
        for (int r = 0; r < rows; ++r) {
            const QString label = cell(r, CompareView::ColTarget);
            QVERIFY2(known.contains(label), qPrintable(label));
            frameworks << label.section(' ', 0, 0);
            QVERIFY2(cell(r, CompareView::ColTtft).contains(" ± "), qPrintable(label));
            QVERIFY2(cell(r, CompareView::ColMemory).front().isDigit(), qPrintable(cell(r, CompareView::ColMemory)));
        }
        frameworks.removeDuplicates();
        frameworks.sort();
        QCOMPARE(frameworks, (QStringList{"HF", "llama.cpp", "workbench"}));  // all three frameworks
        m_window->tabs()->setCurrentWidget(m_view);
        QApplication::processEvents();
        wbtest::saveScreenshot(m_window.get(), "compare-article");
    }

    void cleanupTestCase() {
        m_window.reset();
        m_serve.stop();
    }
};

QTEST_MAIN(TstCompare)
#include "tst_compare.moc"
