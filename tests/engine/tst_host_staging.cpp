// The pinned staging rule of the CUDA device's copies (backend/host_staging.h), held on the CPU: a staged region is
// never handed out again while a copy that reads it may be pending, and a simulated asynchronous stream (DMAs that
// run only when the stream drains, sources overwritten as soon as each call returns) delivers every byte as sent.
#include <QtTest>

#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "backend/host_staging.h"

namespace {

using wb::HostStagingPlan;
using Route = HostStagingPlan::Route;

struct Region {
    int64_t offset, bytes;
};

bool overlaps(const Region& a, const Region& b) {
    return a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
}

// CudaDevice::copyToDevice over a fake stream: staged DMAs are queued and run only at a drain (the latest a real
// stream may run them), reading the pinned buffer then; direct copies read their source at once (the pageable path).
class FakeStream {
public:
    explicit FakeStream(int64_t capacity) : plan(capacity), pinned(size_t(capacity)) {}

    void copyToDevice(uint8_t* dst, const uint8_t* src, int64_t bytes) {
        HostStagingPlan::Slot s = plan.take(bytes);
        if (s.route == Route::DrainFirst) {
            drain();
            s = plan.take(bytes);
            if (s.route != Route::Staged) throw std::logic_error("not staged after a drain");
        }
        if (s.route == Route::Direct) {
            drain();  // the runtime's pageable copy waits for the stream first
            std::memcpy(dst, src, size_t(bytes));
            return;
        }
        std::memcpy(pinned.data() + s.offset, src, size_t(bytes));
        queue.push_back({dst, s.offset, bytes});
    }
    void drain() {
        for (const Dma& d : queue) std::memcpy(d.dst, pinned.data() + d.offset, size_t(d.bytes));
        queue.clear();
        plan.drained();
    }

    HostStagingPlan plan;
    std::vector<uint8_t> pinned;

private:
    struct Dma {
        uint8_t* dst;
        int64_t offset, bytes;
    };
    std::vector<Dma> queue;
};

}  // namespace

class TestHostStaging : public QObject {
    Q_OBJECT

private slots:
    void slotsNeverOverlapPendingCopies() {
        // Random sizes, with drains at random points: every slot is aligned, inside the buffer, and disjoint from
        // every region handed out since the last drain.
        const int64_t capacity = 64 * 1024;
        HostStagingPlan plan(capacity);
        std::mt19937 rng(7);
        std::vector<Region> pending;
        int staged = 0, drainedFirst = 0, direct = 0;
        for (int i = 0; i < 20000; ++i) {
            const int64_t bytes = rng() % 8 == 0 ? int64_t(rng() % (capacity + 4096)) + 1 : int64_t(rng() % 3000) + 1;
            HostStagingPlan::Slot s = plan.take(bytes);
            if (s.route == Route::Direct) {
                QVERIFY(bytes > capacity);
                ++direct;
                continue;
            }
            QVERIFY(bytes <= capacity);
            if (s.route == Route::DrainFirst) {
                // Nothing reserved: the rest was too small for this copy.
                QVERIFY(plan.used() + bytes > capacity - wb::kHostStagingAlign);
                plan.drained();  // the caller waited for the stream
                pending.clear();
                s = plan.take(bytes);
                QVERIFY(s.route == Route::Staged);
                QCOMPARE(s.offset, int64_t(0));
                ++drainedFirst;
            } else {
                ++staged;
            }
            QCOMPARE(s.offset % wb::kHostStagingAlign, int64_t(0));
            QVERIFY(s.offset >= 0 && s.offset + bytes <= capacity);
            const Region r{s.offset, bytes};
            for (const Region& p : pending) QVERIFY2(!overlaps(r, p), qPrintable(QString("copy %1").arg(i)));
            pending.push_back(r);
            QCOMPARE(plan.used(), s.offset + bytes);
            if (rng() % 50 == 0) {
                plan.drained();
                pending.clear();
            }
        }
        QCOMPARE(plan.drains(), int64_t(drainedFirst));
        QVERIFY(staged > 0 && drainedFirst > 0 && direct > 0);  // every route was taken
    }

    void edges() {
        HostStagingPlan none;  // no pinned buffer: every copy is direct
        QVERIFY(none.take(1).route == Route::Direct);
        HostStagingPlan plan(1024);
        QVERIFY(plan.take(0).route == Route::Direct);
        QVERIFY(plan.take(-5).route == Route::Direct);
        QVERIFY(plan.take(1025).route == Route::Direct);
        QCOMPARE(plan.used(), int64_t(0));
        // An exact fit, then a byte that no longer fits: it waits for the stream and starts at the front.
        HostStagingPlan::Slot a = plan.take(1024);
        QVERIFY(a.route == Route::Staged);
        QCOMPARE(a.offset, int64_t(0));
        QVERIFY(plan.take(1).route == Route::DrainFirst);
        QCOMPARE(plan.used(), int64_t(1024));  // nothing reserved until the caller has drained
        plan.drained();
        HostStagingPlan::Slot b = plan.take(1);
        QVERIFY(b.route == Route::Staged);
        QCOMPARE(b.offset, int64_t(0));
        // Alignment: 1 byte used, the next copy starts at 256; 768 bytes fit there exactly, one more does not.
        HostStagingPlan::Slot c = plan.take(768);
        QVERIFY(c.route == Route::Staged);
        QCOMPARE(c.offset, int64_t(256));
        QVERIFY(plan.take(1).route == Route::DrainFirst);
        plan.drained();
        QCOMPARE(plan.used(), int64_t(0));
        QCOMPARE(plan.drains(), int64_t(2));
    }

    void glmStepFitsWithoutWaiting() {
        // The integer arrays of a 2,048-token step of 64 sequences with 128k contexts (GLM-4-9B, 16-token blocks):
        // ids, tokSeq, tokPos, outRows (4 bytes a token), 3 axes of M-RoPE positions, 64 x 8,192 block-table entries.
        HostStagingPlan plan(wb::kHostStagingBytes);
        const int64_t tokens = 2048;
        for (int64_t bytes : {tokens * 4, tokens * 4, tokens * 4, int64_t(64 * 8192 * 4), tokens * 4, 3 * tokens * 4})
            QVERIFY(plan.take(bytes).route == Route::Staged);
        // Then an image's feature rows, 16 KB each: the buffer holds a few hundred before the stream drains once.
        int64_t rows = 0;
        while (plan.take(4096 * 4).route == Route::Staged) ++rows;
        qInfo("%lld feature rows fit beside the step's arrays (%lld bytes staged)", (long long)rows,
              (long long)plan.used());
        QVERIFY(rows >= 300);
        QCOMPARE(plan.drains(), int64_t(1));
    }

    void asynchronousStreamDeliversEveryByte() {
        // Sources are overwritten as soon as each copy returns, DMAs run late: what lands must be what was sent.
        FakeStream stream(16 * 1024);
        std::mt19937 rng(11);
        std::vector<std::vector<uint8_t>> sent, device;
        std::vector<uint8_t> source;
        for (int i = 0; i < 3000; ++i) {
            const int64_t bytes = rng() % 20 == 0 ? int64_t(rng() % 40000) + 1 : int64_t(rng() % 2500) + 1;
            source.resize(size_t(bytes));
            for (auto& b : source) b = uint8_t(rng());
            sent.push_back(source);
            device.emplace_back(size_t(bytes), 0);
            stream.copyToDevice(device.back().data(), source.data(), bytes);
            std::fill(source.begin(), source.end(), uint8_t(0xAB));  // the caller reuses its source at once
            if (rng() % 100 == 0) stream.drain();  // a step's synchronize
        }
        stream.drain();
        for (size_t i = 0; i < sent.size(); ++i) QVERIFY2(device[i] == sent[i], qPrintable(QString("copy %1").arg(i)));
        QVERIFY(stream.plan.drains() > 0);
    }
};

QTEST_APPLESS_MAIN(TestHostStaging)
#include "tst_host_staging.moc"
