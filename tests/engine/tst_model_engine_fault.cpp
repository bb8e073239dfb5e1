// The Engine's Faulted state, driven on the CPU: a device in front of each rank (FaultInjectingDevice) faults as a
// CUDA device does after an illegal address; the engine fails what was live with the reason, rejects new
// requests naming it, reports it in stats, and reload() (model and devices destroyed, devices made afresh) brings
// it back to serving the same tokens as before the fault.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QtTest>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "api/engine.h"
#include "api/server.h"
#include "backend/backend_registry.h"
#include "backend/fault_injecting_device.h"
#include "fixtures.h"

namespace {

const char* kGguf = "models/stories260K/stories260K.gguf";

class Collector {
public:
    wb::EventSink sink() {
        return [this](const wb::Event& e) {
            std::lock_guard lock(m_mutex);
            m_byId[e.id].push_back(e);
            m_cv.notify_all();
        };
    }
    // The terminal event of the request (Finished or Error), or an empty optional on timeout.
    std::optional<wb::Event> waitTerminal(wb::RequestId id, int timeoutMs = 60000) {
        std::unique_lock lock(m_mutex);
        const bool ok = m_cv.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] {
            const auto& v = m_byId[id];
            return !v.empty() && (v.back().type == wb::EventType::Finished || v.back().type == wb::EventType::Error);
        });
        if (!ok) return std::nullopt;
        return m_byId[id].back();
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::map<wb::RequestId, std::vector<wb::Event>> m_byId;
};

// One GET over a fresh connection; the raw response (status line, headers, body), or empty after 10 s.
std::string httpGet(int port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size())) {
            const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (std::chrono::steady_clock::now() < end) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 100) <= 0) continue;
                char buf[4096];
                const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                out.append(buf, size_t(n));
            }
        }
    }
    ::close(fd);
    return out;
}

wb::Request greedy(const std::string& prompt, int64_t maxTokens) {
    wb::Request r;
    r.prompt = prompt;
    r.maxTokens = maxTokens;
    r.ignoreEos = true;
    r.sampling.temperature = 0;
    return r;
}

}  // namespace

class TestModelEngineFault : public QObject {
    Q_OBJECT

private:
    std::mutex m_devsMutex;
    std::vector<wb::FaultInjectingDevice*> m_devs;  // the devices of the model loaded last

private slots:
    void init() {
        wb::setDeviceWrapperForTesting([this](int rank, std::unique_ptr<wb::Device> d) {
            auto w = std::make_unique<wb::FaultInjectingDevice>(std::move(d));
            std::lock_guard lock(m_devsMutex);
            if (rank == 0) m_devs.clear();
            m_devs.push_back(w.get());
            return std::unique_ptr<wb::Device>(std::move(w));
        });
    }
    void cleanup() { wb::setDeviceWrapperForTesting({}); }

    void faultedThenReloaded_data() {
        QTest::addColumn<int>("degree");
        QTest::newRow("one device") << 1;
        QTest::newRow("two ranks") << 2;
    }
    void faultedThenReloaded() {
        QFETCH(int, degree);
        WB_REQUIRE_FIXTURE(kGguf);
        wb::EngineOptions o;
        o.modelPath = wbtest::fixture(kGguf);
        o.load.numThreads = 2;
        o.load.parallelDegree = degree;
        o.kvCacheBytes = int64_t(16) << 20;
        auto created = wb::Engine::create(o);
        QVERIFY2(created, created ? "" : created.error().message.c_str());
        auto& engine = **created;
        QCOMPARE(engine.state(), wb::EngineState::Serving);
        QCOMPARE(int(m_devs.size()), degree);

        Collector c;
        auto before = c.waitTerminal(engine.submit(greedy("Once upon a time", 24), c.sink()));
        QVERIFY(before && before->type == wb::EventType::Finished);
        QCOMPARE(before->tokens.size(), size_t(24));

        // A fault a few ops into the next request's steps.
        m_devs[0]->failAfter(30, wb::FaultInjectingDevice::Failure::Fault, "illegal memory access");
        auto failed = c.waitTerminal(engine.submit(greedy("Once upon a time", 24), c.sink()));
        QVERIFY(failed);
        QCOMPARE(failed->type, wb::EventType::Error);
        QVERIFY2(failed->text.find("engine faulted") != std::string::npos &&
                     failed->text.find("illegal memory access") != std::string::npos,
                 failed->text.c_str());
        QCOMPARE(engine.state(), wb::EngineState::Faulted);
        QVERIFY(engine.faultReason().find("illegal memory access") != std::string::npos);
        QCOMPARE(engine.stats().state, wb::EngineState::Faulted);
        QVERIFY(engine.stats().faultReason.find("illegal memory access") != std::string::npos);

        // Rejected while faulted, with the reason, and at once (no step runs).
        const int64_t opsBefore = m_devs[0]->opsRun();
        auto rejected = c.waitTerminal(engine.submit(greedy("The little dog", 8), c.sink()));
        QVERIFY(rejected && rejected->type == wb::EventType::Error);
        QVERIFY(rejected->text.find("illegal memory access") != std::string::npos);
        QVERIFY(rejected->text.find("reload") != std::string::npos);
        QCOMPARE(m_devs[0]->opsRun(), opsBefore);

        // The server's health check says so too (503 with the reason), for a supervisor to act on.
        if (degree == 2) {
            wb::ServeOptions so;
            so.port = 0;
            auto server = wb::OpenAiServer::create(engine, so);
            QVERIFY(server);
            auto port = (*server)->bind();
            QVERIFY(port);
            std::thread t([&] { (void)(*server)->run(); });
            const std::string health = httpGet(*port, "/health");
            const std::string metrics = httpGet(*port, "/metrics");
            (*server)->stop();
            t.join();
            QVERIFY2(health.rfind("HTTP/1.1 503", 0) == 0, health.c_str());
            QVERIFY(health.find("\"status\":\"faulted\"") != std::string::npos);
            QVERIFY(health.find("illegal memory access") != std::string::npos);
            const size_t g = metrics.find("\nwb_engine_faulted{");
            QVERIFY2(g != std::string::npos, metrics.c_str());
            QCOMPARE(metrics.substr(metrics.find("} ", g) + 2, 2), std::string("1\n"));
        }

        // Reload: the model and its devices go, new ones come (no fault armed), and it serves the same tokens.
        const wb::FaultInjectingDevice* old = m_devs[0];
        auto r = engine.reload();
        QVERIFY2(r, r ? "" : r.error().message.c_str());
        QCOMPARE(engine.state(), wb::EngineState::Serving);
        QVERIFY(engine.faultReason().empty());
        QCOMPARE(engine.stats().state, wb::EngineState::Serving);
        QVERIFY(m_devs[0] != old || m_devs[0]->fault().empty());
        QVERIFY(m_devs[0]->fault().empty());
        const wb::RequestId afterId = engine.submit(greedy("Once upon a time", 24), c.sink());
        QVERIFY(afterId > before->id);  // ids keep counting up across the reload
        auto after = c.waitTerminal(afterId);
        QVERIFY(after && after->type == wb::EventType::Finished);
        QCOMPARE(after->tokens, before->tokens);
    }

    void ordinaryErrorDoesNotFault() {
        WB_REQUIRE_FIXTURE(kGguf);
        wb::EngineOptions o;
        o.modelPath = wbtest::fixture(kGguf);
        o.load.numThreads = 2;
        o.load.parallelDegree = 2;
        o.kvCacheBytes = int64_t(16) << 20;
        auto created = wb::Engine::create(o);
        QVERIFY(created);
        auto& engine = **created;
        Collector c;
        // An error that leaves the device usable (out of memory): the request in the step fails, the engine
        // serves on (the communicators were re-created).
        m_devs[1]->failAfter(20, wb::FaultInjectingDevice::Failure::Error, "out of memory");
        auto failed = c.waitTerminal(engine.submit(greedy("Once upon a time", 8), c.sink()));
        QVERIFY(failed && failed->type == wb::EventType::Error);
        QVERIFY(failed->text.find("out of memory") != std::string::npos);
        QVERIFY(failed->text.find("engine faulted") == std::string::npos);
        QCOMPARE(engine.state(), wb::EngineState::Serving);
        auto ok = c.waitTerminal(engine.submit(greedy("Once upon a time", 8), c.sink()));
        QVERIFY(ok && ok->type == wb::EventType::Finished);
        QCOMPARE(ok->tokens.size(), size_t(8));
    }
};

QTEST_GUILESS_MAIN(TestModelEngineFault)
#include "tst_model_engine_fault.moc"
