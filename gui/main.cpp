// workbench: the desktop front end. `--version` answers without a display, so packaging checks can run it.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <cstdio>
#include <cstring>
#include <memory>

#include "app/main_window.h"
#include "app/model_manager_view.h"

int main(int argc, char** argv) {
    // Answer --version / --help before QApplication: they must work on a machine with no display at all.
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--version") == 0 || std::strcmp(argv[i], "-v") == 0) {
            std::printf("workbench %s\n", WB_VERSION);
            return 0;
        }
        if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            std::printf("Usage: workbench [--data-dir DIR] [--add-model PATH]... [--version]\n"
                        "  --data-dir DIR     settings and chat history (default: $WB_DATA_DIR or the app data folder)\n"
                        "  --add-model PATH   add a .gguf file or model folder to the library and select it\n"
                        "  --load             load the last --add-model at start, ready to chat\n");
            return 0;
        }
    }
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("workbench"));
    // No organisation name: the data folder is ~/.local/share/workbench, not .../workbench/workbench
    // (MainWindow::defaultDataDir keeps using an existing doubled folder).
    QApplication::setApplicationVersion(QStringLiteral(WB_VERSION));

    QCommandLineParser parser;
    QCommandLineOption dataDir(QStringLiteral("data-dir"), QStringLiteral("Settings and chat history folder."),
                               QStringLiteral("DIR"));
    QCommandLineOption addModel(QStringLiteral("add-model"), QStringLiteral("Add a model to the library."),
                                QStringLiteral("PATH"));
    QCommandLineOption load(QStringLiteral("load"), QStringLiteral("Load the last --add-model at start."));
    parser.addOptions({dataDir, addModel, load});
    parser.process(app);

    wbgui::MainWindow window(parser.isSet(dataDir) ? parser.value(dataDir) : wbgui::MainWindow::defaultDataDir());
    QApplication::setWindowIcon(window.windowIcon());
    const QStringList models = parser.values(addModel);
    for (const QString& m : models) window.modelManager()->addLibraryEntry(m);
    if (!models.isEmpty()) {
        // The scan runs on a pool thread: select (and load) once its result is in, the first time only.
        auto conn = std::make_shared<QMetaObject::Connection>();
        *conn = QObject::connect(window.modelManager(), &wbgui::ModelManagerView::scanFinished, &window,
                                 [&window, conn, m = models.last(), autoLoad = parser.isSet(load)] {
                                     QObject::disconnect(*conn);
                                     if (window.modelManager()->selectModel(m) && autoLoad)
                                         window.modelManager()->loadSelected();
                                 });
    }
    window.show();
    return app.exec();
}
