// `wb serve` as a child process on a free loopback port, for tests that drive it as a remote target.
#pragma once

#include <QElapsedTimer>
#include <QProcess>
#include <QRegularExpression>
#include <QStringList>
#include <QtTest>

namespace wbtest {

class ServeProcess {
public:
    ~ServeProcess() { stop(); }
    /// Starts `wb serve -m model --port 0` and waits for its "listening on" line; empty baseUrl() on failure.
    bool start(const QString& wb, const QString& model, const QStringList& extra = {}, int timeoutMs = 60000) {
        m_proc.setProcessChannelMode(QProcess::SeparateChannels);
        m_proc.start(wb, QStringList{"serve", "-m", model, "--port", "0", "-t", "1"} + extra);
        if (!m_proc.waitForStarted(10000)) return false;
        QElapsedTimer t;
        t.start();
        QByteArray out;
        static const QRegularExpression re("listening on (http://\\S+/v1)");
        while (t.elapsed() < timeoutMs && m_proc.state() == QProcess::Running) {
            m_proc.waitForReadyRead(200);
            out += m_proc.readAllStandardOutput();
            const auto m = re.match(QString::fromUtf8(out));
            if (m.hasMatch()) {
                m_baseUrl = m.captured(1);
                return true;
            }
        }
        m_log = QString::fromUtf8(out + m_proc.readAllStandardError());
        return false;
    }
    void stop() {
        if (m_proc.state() == QProcess::NotRunning) return;
        m_proc.terminate();
        if (!m_proc.waitForFinished(5000)) {
            m_proc.kill();
            m_proc.waitForFinished(5000);
        }
    }
    QString baseUrl() const { return m_baseUrl; }
    QString log() const { return m_log; }

private:
    QProcess m_proc;
    QString m_baseUrl;
    QString m_log;
};

}  // namespace wbtest
