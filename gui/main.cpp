// workbench: the desktop front end. `--version` answers without a display, so packaging checks can run it.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <cstdio>
#include <cstring>

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
                        "  --add-model PATH   add a .gguf file or model folder to the library and select it\n");
            return 0;
        }
    }
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("workbench"));
    QApplication::setOrganizationName(QStringLiteral("workbench"));
    QApplication::setApplicationVersion(QStringLiteral(WB_VERSION));

    QCommandLineParser parser;
    QCommandLineOption dataDir(QStringLiteral("data-dir"), QStringLiteral("Settings and chat history folder."),
                               QStringLiteral("DIR"));
    QCommandLineOption addModel(QStringLiteral("add-model"), QStringLiteral("Add a model to the library."),
                                QStringLiteral("PATH"));
    parser.addOptions({dataDir, addModel});
    parser.process(app);

    wbgui::MainWindow window(parser.isSet(dataDir) ? parser.value(dataDir) : wbgui::MainWindow::defaultDataDir());
    QApplication::setWindowIcon(window.windowIcon());
    const QStringList models = parser.values(addModel);
    for (const QString& m : models) window.modelManager()->addLibraryEntry(m);
    if (!models.isEmpty()) {
        QObject::connect(window.modelManager(), &wbgui::ModelManagerView::scanFinished, &window,
                         [&window, m = models.last()] { window.modelManager()->selectModel(m); });
    }
    window.show();
    return app.exec();
}
