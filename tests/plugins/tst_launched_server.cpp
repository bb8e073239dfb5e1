// LaunchedServer (api/target_plugins.h): the servers the Compare view starts itself. A server's output reaches its
// log, stop() ends its whole process group, a failed start names the step that failed, it inherits no descriptor of
// the workbench, and a workbench that dies without stopping it (SIGKILL) takes it down (PR_SET_PDEATHSIG) instead of
// leaving an orphan that holds a GPU and a port.
//
// The test process is a child subreaper (PR_SET_CHILD_SUBREAPER), so that processes orphaned by a test come back to
// it: it can then wait for them and read how they ended.
#include <QtTest>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "api/target_plugins.h"

namespace {

std::string readFile(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// Waits up to `seconds` for a child (or an orphan handed to this subreaper) to end; its wait status, or -1.
int waitFor(pid_t pid, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
        int status = 0;
        const pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 || std::chrono::steady_clock::now() > deadline) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// Waits for `text` in the file (a server's log or the pid file a launched script writes).
bool waitForText(const std::string& path, const std::string& text, double seconds = 10) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (readFile(path).find(text) == std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

}  // namespace

class TestLaunchedServer : public QObject {
    Q_OBJECT

    QTemporaryDir m_dir;
    std::string path(const char* name) const { return (m_dir.path() + "/" + name).toStdString(); }

private slots:
    void initTestCase() {
        QVERIFY(m_dir.isValid());
        QCOMPARE(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    }

    void logsAndStopsItsGroup() {
        // A launcher script with a child of its own: both must end at stop(), and both streams reach the log.
        wb::ServerLaunch l;
        const std::string pidFile = path("child.pid");
        l.argv = {"sh", "-c", "sleep 60 & echo $! > " + pidFile + "; echo out; echo err >&2; wait"};
        l.logPath = path("group.log");
        auto s = wb::LaunchedServer::start(l);
        QVERIFY2(s, s ? "" : s.error().message.c_str());
        QVERIFY((*s)->pid() > 0);
        QVERIFY(waitForText(l.logPath, "out") && waitForText(l.logPath, "err"));
        QVERIFY(waitForText(pidFile, "\n"));
        const pid_t child = pid_t(std::stoi(readFile(pidFile)));
        QVERIFY((*s)->running());
        (*s)->stop(5000);
        QVERIFY(!(*s)->running());
        QVERIFY2((*s)->exitDescription().find("signal 15") != std::string::npos, (*s)->exitDescription().c_str());
        // The script's own child, orphaned by the script's end, came back to this subreaper: killed too.
        const int status = waitFor(child, 10);
        QVERIFY2(status != -1, "the launcher's child outlived stop()");
        QVERIFY(WIFSIGNALED(status));
    }

    void exitStatusAndEnvironment() {
        // The launch's PATH finds its command (a folder this process's PATH lacks); its variables reach it.
        const std::string bin = path("bin");
        QVERIFY(QDir().mkpath(QString::fromStdString(bin)));
        const std::string script = bin + "/wb-fake-server";
        {
            std::ofstream f(script);
            f << "#!/bin/sh\necho value=$WB_TEST_VALUE\nexit 3\n";
        }
        QCOMPARE(chmod(script.c_str(), 0755), 0);
        wb::ServerLaunch l;
        l.argv = {"wb-fake-server"};
        l.env = {"WB_TEST_VALUE=42", "PATH=" + bin + ":/usr/bin:/bin"};
        l.logPath = path("env.log");
        auto s = wb::LaunchedServer::start(l);
        QVERIFY2(s, s ? "" : s.error().message.c_str());
        for (int i = 0; i < 500 && (*s)->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        QVERIFY(!(*s)->running());
        QCOMPARE((*s)->exitDescription(), std::string("exited with status 3"));
        QVERIFY(readFile(l.logPath).find("value=42") != std::string::npos);
        QVERIFY((*s)->logTail(100).find("value=42") != std::string::npos);
        (*s)->stop();  // after it ended: nothing to do, no error
    }

    void failedStartsNameTheStep() {
        // Empty when the start failed with `part` in its message; else what happened instead.
        auto expectError = [](const wb::ServerLaunch& l, const std::string& part) {
            auto s = wb::LaunchedServer::start(l);
            if (s) return std::string("started");
            return s.error().message.find(part) == std::string::npos ? s.error().message : std::string();
        };
#define EXPECT_ERROR(l, part)                                 \
    do {                                                      \
        const std::string got = expectError(l, part);         \
        QVERIFY2(got.empty(), got.c_str());                   \
    } while (0)
        wb::ServerLaunch l;
        l.logPath = path("fail.log");
        l.argv = {"wb-no-such-command-5f2c"};
        EXPECT_ERROR(l, "wb-no-such-command-5f2c: no executable of that name on PATH");
        const std::string plain = path("not-executable");
        std::ofstream(plain) << "#!/bin/sh\n";
        QCOMPARE(chmod(plain.c_str(), 0644), 0);
        l.argv = {plain};
        EXPECT_ERROR(l, "cannot execute " + plain + ": Permission denied");
        l.argv = {"not-executable"};  // not found on PATH either: lookup wants an executable file
        l.env = {"PATH=" + path("")};
        EXPECT_ERROR(l, "not-executable: no executable of that name on PATH");
        l.env.clear();
        l.argv = {"sh", "-c", "exit 0"};
        l.workDir = "/nonexistent-wb-folder";
        EXPECT_ERROR(l, "cannot change to its folder /nonexistent-wb-folder: No such file");
        l.workDir.clear();
        l.logPath = "/nonexistent-wb-folder/x.log";
        EXPECT_ERROR(l, "cannot write its log /nonexistent-wb-folder/x.log");
        wb::ServerLaunch empty;
        EXPECT_ERROR(empty, "no command");
#undef EXPECT_ERROR
    }

    void inheritsNoDescriptor() {
        // A descriptor of the workbench without close-on-exec (a listening socket, a model file) stays here.
        // One below the descriptors start() opens for itself, one far above them.
        const int fd = open("/dev/null", O_RDONLY);  // no O_CLOEXEC
        QVERIFY(fd > 2);
        const int high = fcntl(fd, F_DUPFD, 200);
        QVERIFY(high >= 200);
        wb::ServerLaunch l;
        const std::string test = "[ -e /proc/$$/fd/" + std::to_string(fd) + " ] || [ -e /proc/$$/fd/" +
                                 std::to_string(high) + " ]";
        l.argv = {"sh", "-c", "if " + test + "; then echo leaked; else echo clean; fi; ls /proc/$$/fd"};
        l.logPath = path("fd.log");
        auto s = wb::LaunchedServer::start(l);
        QVERIFY2(s, s ? "" : s.error().message.c_str());
        QVERIFY(waitForText(l.logPath, "\n"));
        for (int i = 0; i < 500 && (*s)->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        close(fd);
        close(high);
        QVERIFY2(readFile(l.logPath).rfind("clean", 0) == 0, readFile(l.logPath).c_str());
    }

    void diesWithTheWorkbench() {
        // A stand-in for the workbench (a child of this test) starts a server and is killed with SIGKILL, which runs
        // no destructor: the kernel sends the server SIGTERM. The orphaned server comes back to this subreaper.
        int fds[2];
        QCOMPARE(pipe(fds), 0);
        const pid_t workbench = fork();
        QVERIFY(workbench >= 0);
        if (workbench == 0) {
            close(fds[0]);
            wb::ServerLaunch l;
            l.argv = {"sleep", "60"};
            l.logPath = path("orphan.log");
            auto s = wb::LaunchedServer::start(l);
            const int pid = s ? (*s)->pid() : -1;
            [[maybe_unused]] const ssize_t n = write(fds[1], &pid, sizeof pid);
            for (;;) pause();
        }
        close(fds[1]);
        int server = -1;
        QCOMPARE(read(fds[0], &server, sizeof server), ssize_t(sizeof server));
        close(fds[0]);
        QVERIFY(server > 0);
        QCOMPARE(kill(workbench, SIGKILL), 0);
        QVERIFY(waitFor(workbench, 10) != -1);
        const int status = waitFor(server, 10);
        if (status == -1) kill(server, SIGKILL);
        QVERIFY2(status != -1, "the server outlived the workbench that started it");
        QVERIFY(WIFSIGNALED(status));
        QCOMPARE(WTERMSIG(status), SIGTERM);
    }
};

QTEST_APPLESS_MAIN(TestLaunchedServer)
#include "tst_launched_server.moc"
