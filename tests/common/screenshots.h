// The README's screenshots (docs/screenshots/*.png), taken by the GUI suites. A normal run grabs and saves each
// one into a temporary folder (so the grab, the PNG and its size are still checked) and leaves the source tree
// alone; WB_WRITE_SCREENSHOTS=1 writes them into docs/screenshots, to refresh the README's pictures:
//   WB_WRITE_SCREENSHOTS=1 ctest --test-dir build-ci -L gui
#pragma once

#include <QDir>
#include <QFileInfo>
#include <QImage>
#include <QString>
#include <QTemporaryDir>
#include <QWidget>
#include <QtTest>
#include <cstdlib>
#include <cstring>

namespace wbtest {

inline bool writeScreenshotsToDocs() {
    const char* v = std::getenv("WB_WRITE_SCREENSHOTS");
    return v && *v && std::strcmp(v, "0") != 0;
}

/// docs/screenshots when asked (WB_WRITE_SCREENSHOTS=1), else a temporary folder removed when the suite exits.
inline QString screenshotDir() {
    if (writeScreenshotsToDocs()) return QStringLiteral(WB_SOURCE_DIR "/docs/screenshots");
    static QTemporaryDir tmp(QDir::tempPath() + "/wbtest-screenshots-XXXXXX");
    return tmp.path();
}

/// Grabs `w` and saves it as <name>.png, under the 200 KB the README's pictures are kept to.
inline void saveScreenshot(QWidget* w, const QString& name) {
    QVERIFY(QDir().mkpath(screenshotDir()));
    const QImage img = w->grab().toImage().convertToFormat(QImage::Format_RGB888);
    QVERIFY2(!img.isNull() && img.width() > 100 && img.height() > 100, qPrintable(name + ": empty grab"));
    const QString path = screenshotDir() + "/" + name + ".png";
    QVERIFY2(img.save(path, "PNG", 9), qPrintable(path));
    QVERIFY2(QFileInfo(path).size() < 200 * 1024, qPrintable(path + " is over 200 KB"));
}

}  // namespace wbtest
