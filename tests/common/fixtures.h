// Where tests find ../shared/fixtures: the WB_FIXTURES_DIR environment variable, else the CMake cache entry.
#pragma once

#include <QDir>
#include <QFileInfo>
#include <QString>
#include <QtTest>
#include <cstdlib>
#include <string>

namespace wbtest {

inline std::string fixturesDir() {
    if (const char* env = std::getenv("WB_FIXTURES_DIR"); env && *env) return env;
    return WB_DEFAULT_FIXTURES_DIR;
}

inline std::string fixture(const std::string& rel) { return fixturesDir() + "/" + rel; }

inline bool haveFixture(const std::string& rel) { return QFileInfo::exists(QString::fromStdString(fixture(rel))); }

inline std::string tempDir() {
    static QString dir = [] {
        QString d = QDir::tempPath() + "/wbtest-" + QString::number(QCoreApplication::applicationPid());
        QDir().mkpath(d);
        return d;
    }();
    return dir.toStdString();
}

}  // namespace wbtest

/// Skips the current test with a message naming the missing fixture and the setting that points at them.
#define WB_REQUIRE_FIXTURE(rel)                                                                               \
    do {                                                                                                      \
        if (!wbtest::haveFixture(rel))                                                                        \
            QSKIP(qPrintable(QString("fixture %1 not found under %2 (set WB_FIXTURES_DIR to ../shared/fixtures)") \
                                 .arg(QString::fromStdString(rel), QString::fromStdString(wbtest::fixturesDir())))); \
    } while (0)
