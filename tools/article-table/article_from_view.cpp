// article-from-view: the article's preset run end to end from the desktop app's Compare view, as a user runs it —
// the model field set to a folder laid out as tools/article-table wants (hf/, f32.gguf, f16.gguf, q8_0.gguf),
// "Article targets" (this engine at FP32/BF16/INT8, Transformers at FP32/BF16, llama.cpp at F16/Q8_0, the servers
// launched by the view), the preset workload (128 in / 64 out at concurrency 1, 4, 8), Run — then the view's own
// comparison file saved and each target's figures printed. A benchmark program, not a test (CTest never runs it;
// tst_compare::articleTargetsLaunchTheirServers holds the same path on the fixture).
//
//   QT_QPA_PLATFORM=offscreen article-from-view DIR OUT.json [REQUESTS_PER_LEVEL]
//   wb bench --report OUT.json
//
// Transformers at FP32 wants an OpenBLAS libblas.so.3 on LD_LIBRARY_PATH (tools/hf-serve/README.md).
// Exit code: 0 every target measured at every level without an error, 1 otherwise, 2 bad arguments.
#include <QApplication>
#include <QJsonArray>
#include <QJsonObject>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <cstdio>

#include "app/compare_view.h"
#include "app/main_window.h"

using wbgui::CompareView;
using wbgui::MainWindow;

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    if (argc < 3) {
        std::fprintf(stderr, "usage: article-from-view DIR OUT.json [REQUESTS_PER_LEVEL]\n");
        return 2;
    }
    const QString dir = QString::fromLocal8Bit(argv[1]), out = QString::fromLocal8Bit(argv[2]);
    QTemporaryDir data;  // settings and history of this run only
    MainWindow window(data.path() + "/data");
    window.resize(1180, 760);
    window.show();
    CompareView* view = window.compareView();
    window.tabs()->setCurrentWidget(view);
    auto* model = view->findChild<QLineEdit*>("compareModelPath");
    auto* article = view->findChild<QPushButton*>("compareArticleTargets");
    auto* requests = view->findChild<QSpinBox*>("compareRequests");
    auto* run = view->findChild<QPushButton*>("compareRun");
    if (!model || !article || !requests || !run) {
        std::fprintf(stderr, "article-from-view: the Compare view lacks its model field or buttons\n");
        return 1;
    }
    model->setText(dir);
    article->click();
    if (argc > 3) requests->setValue(std::atoi(argv[3]));
    std::printf("%lld targets, workload %lld in / %lld out, %d requests a level (0: auto)\n",
                (long long)view->targets().size(), (long long)view->workload().inputTokens,
                (long long)view->workload().outputTokens, requests->value());
    std::fflush(stdout);
    int code = 1;
    QObject::connect(view, &CompareView::runFinished, &app, [&](bool cancelled) {
        QString error;
        if (!view->saveFile(out, &error)) std::fprintf(stderr, "article-from-view: %s\n", qPrintable(error));
        bool clean = !cancelled && error.isEmpty();
        for (const QJsonValue& v : view->comparison().value("runs").toArray()) {
            const QJsonObject r = v.toObject();
            std::printf("%-40s", qPrintable(r.value("label").toString()));
            if (r.contains("error")) {
                std::printf(" error: %s\n", qPrintable(r.value("error").toString()));
                clean = false;
                continue;
            }
            for (const QJsonValue& l : r.value("results").toArray()) {
                const QJsonObject level = l.toObject();
                clean = clean && level.value("errors").toInt() == 0;
                std::printf("  c%d %.1f tok/s (%d errors)", level.value("concurrency").toInt(),
                            level.value("output_tokens_per_s").toDouble(), level.value("errors").toInt());
            }
            std::printf("\n");
        }
        std::printf("saved %s%s\n", qPrintable(out), cancelled ? " (cancelled)" : "");
        code = clean ? 0 : 1;
        app.quit();
    });
    run->click();
    app.exec();
    return code;
}
