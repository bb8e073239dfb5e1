// Where tests find ../shared/fixtures: the WB_FIXTURES_DIR environment variable, else the CMake cache entry.
// A missing fixture skips the test on a developer's machine and fails it in CI (CI=true, as CI services set it, or
// WB_REQUIRE_FIXTURES=1; WB_REQUIRE_FIXTURES=0 allows skips again), so CI never passes by skipping what it cannot see.
#pragma once

#include <QDir>
#include <QTemporaryDir>
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

/// Whether a missing fixture fails rather than skips: WB_REQUIRE_FIXTURES when set, else CI.
inline bool fixturesRequired() {
    auto flag = [](const char* name, bool& value) {
        const char* v = std::getenv(name);
        if (!v || !*v) return false;
        const std::string s = QString::fromLocal8Bit(v).trimmed().toLower().toStdString();
        value = !(s == "0" || s == "false" || s == "no" || s == "off");
        return true;
    };
    bool required = false;
    if (flag("WB_REQUIRE_FIXTURES", required)) return required;
    return flag("CI", required) && required;
}

/// Why a fixture is missing, and what to do about it.
inline QString missingFixtureMessage(const std::string& rel) {
    return QString("fixture %1 not found under %2 (set WB_FIXTURES_DIR to ../shared/fixtures)%3")
        .arg(QString::fromStdString(rel), QString::fromStdString(fixturesDir()),
             fixturesRequired() ? " - a failure, not a skip, because CI / WB_REQUIRE_FIXTURES is set" : "");
}

/// A scratch folder for this suite's process, removed with everything in it when the suite exits (a folder per
/// pid that was never removed had piled up: 832 of them in /tmp, models of up to 540 MB inside).
inline std::string tempDir() {
    static QTemporaryDir dir(QDir::tempPath() + "/wbtest-XXXXXX");
    return dir.path().toStdString();
}

}  // namespace wbtest

/// Ends the current test when a fixture is missing, with a message naming it and the setting that points at them:
/// a skip on a developer's machine, a failure where fixtures are required (wbtest::fixturesRequired()).
#define WB_REQUIRE_FIXTURE(rel)                                                        \
    do {                                                                               \
        if (!wbtest::haveFixture(rel)) {                                               \
            const QString wbMissing_ = wbtest::missingFixtureMessage(rel);             \
            if (wbtest::fixturesRequired()) QFAIL(qPrintable(wbMissing_));              \
            QSKIP(qPrintable(wbMissing_));                                             \
        }                                                                              \
    } while (0)
