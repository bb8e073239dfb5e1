// A stand-in for Android's `adb`, for the phone agent's tests: a shell script written into a folder that the
// test puts first on PATH. It appends each command line it gets to FOLDER/log (one line, the arguments joined by
// spaces, exactly as a user would type them after `adb`), answers `devices` from FOLDER/devices, `shell wm size`
// with FOLDER/wm_size, `shell dumpsys window` with FOLDER/window (if there), and `exec-out screencap -p` with
// FOLDER/screen_N.png for the Nth screenshot (the last one again when they run out); every other command succeeds
// silently, as `adb shell input …` does.
#pragma once

#include <QDir>
#include <QFile>
#include <QString>
#include <QStringList>
#include <string>
#include <vector>

namespace wbtest {

class FakeAdb {
public:
    /// Writes the script into `dir` (created), with one attached device "SERIAL<TAB>device".
    explicit FakeAdb(const QString& dir, const QString& serial = QStringLiteral("emulator-5554"))
        : m_dir(dir), m_path(dir.toUtf8() + ':' + qgetenv("PATH")) {
        QDir().mkpath(dir);
        QFile f(dir + QStringLiteral("/adb"));
        f.open(QIODevice::WriteOnly);
        const QString d = dir;
        f.write(QStringLiteral(R"(#!/bin/sh
d='%1'
printf '%s\n' "$*" >> "$d/log"
if [ "$1" = "-s" ]; then shift 2; fi
case "$1" in
  devices)
    # As the real adb's first command starts its server: a process left behind holding stdout open.
    if [ -f "$d/daemon" ]; then sleep 5 & fi
    printf 'List of devices attached\n'; cat "$d/devices"; exit 0 ;;
  exec-out)
    n=$(cat "$d/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$d/count"
    f="$d/screen_$n.png"
    while [ ! -f "$f" ] && [ "$n" -gt 1 ]; do n=$((n - 1)); f="$d/screen_$n.png"; done
    cat "$f"; exit 0 ;;
  shell)
    if [ "$2" = wm ]; then cat "$d/wm_size"; fi
    if [ "$2" = dumpsys ]; then cat "$d/window" 2>/dev/null; fi
    exit 0 ;;
esac
exit 0
)")
                    .arg(d)
                    .toUtf8());
        f.close();
        f.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        setDevices(serial + QStringLiteral("\tdevice\n"));
        write(QStringLiteral("wm_size"), QByteArray("Physical size: 200x400\n"));
    }
    const QString& dir() const { return m_dir; }
    void setDevices(const QString& lines) { write(QStringLiteral("devices"), lines.toUtf8()); }
    /// What `adb shell dumpsys window` prints (the focused window names the app in front).
    void setWindowDump(const QByteArray& text) { write(QStringLiteral("window"), text); }
    /// The Nth screenshot (from 1): any bytes, a PNG or not.
    void setScreen(int n, const QByteArray& bytes) { write(QStringLiteral("screen_%1.png").arg(n), bytes); }
    void setScreen(int n, const std::vector<uint8_t>& png) {
        setScreen(n, QByteArray(reinterpret_cast<const char*>(png.data()), qsizetype(png.size())));
    }
    /// The command lines received so far; clearLog() forgets them.
    QStringList log() const {
        QFile f(m_dir + QStringLiteral("/log"));
        if (!f.open(QIODevice::ReadOnly)) return {};
        return QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    }
    void clearLog() { QFile::remove(m_dir + QStringLiteral("/log")); }
    /// `devices` leaves a process behind that holds stdout open for 5 s (what adb's server start does).
    void setLeavesDaemon(bool on) {
        if (on)
            write(QStringLiteral("daemon"), "1");
        else
            QFile::remove(m_dir + QStringLiteral("/daemon"));
    }
    void resetScreens() { QFile::remove(m_dir + QStringLiteral("/count")); }
    /// PATH as it was when this was made, with this folder first: set it with qputenv before the agent (or a `wb`
    /// child) runs. The script itself needs the rest of PATH (cat, printf).
    const QByteArray& path() const { return m_path; }

private:
    void write(const QString& name, const QByteArray& bytes) {
        QFile f(m_dir + '/' + name);
        f.open(QIODevice::WriteOnly);
        f.write(bytes);
    }
    QString m_dir;
    QByteArray m_path;
};

}  // namespace wbtest
