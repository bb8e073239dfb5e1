// Streaming detokenization: UTF-8 reassembly across arbitrary splits, U+FFFD for ill-formed bytes, and stop
// strings that are held back only while they may still complete.
#include <QtTest>

#include <string>
#include <vector>

#include "runtime/detokenizer.h"

using wb::StopStringMatcher;
using wb::Utf8Stream;

namespace {

const std::string kFffd = "\xEF\xBF\xBD";

bool completeUtf8(const std::string& s) {
    // Every emitted chunk must itself be valid UTF-8 (QString round-trips it unchanged only then).
    return QString::fromUtf8(s.data(), qsizetype(s.size())).toStdString() == s;
}

// Feeds `input` to a fresh stream cut at the given split points; checks every chunk is whole characters.
std::string streamWithCuts(const std::string& input, const std::vector<size_t>& cuts, bool* chunksOk) {
    Utf8Stream st;
    std::string out;
    size_t prev = 0;
    *chunksOk = true;
    auto feed = [&](std::string_view piece) {
        const std::string chunk = st.push(piece);
        if (!completeUtf8(chunk)) *chunksOk = false;
        out += chunk;
    };
    for (size_t c : cuts) {
        feed(std::string_view(input).substr(prev, c - prev));
        prev = c;
    }
    feed(std::string_view(input).substr(prev));
    const std::string tail = st.flush();
    if (!completeUtf8(tail)) *chunksOk = false;
    return out + tail;
}

// Runs a stop matcher over `text` split into the given pieces; returns the emitted text.
std::string runStops(const std::vector<std::string>& stops, const std::vector<std::string>& pieces, bool* stopped) {
    StopStringMatcher m(stops);
    std::string out;
    for (const auto& p : pieces) out += m.push(p);
    *stopped = m.stopped();
    out += m.flush();
    return out;
}

std::vector<std::string> splitEvery(const std::string& s, size_t n) {
    std::vector<std::string> v;
    for (size_t i = 0; i < s.size(); i += n) v.push_back(s.substr(i, n));
    return v;
}

}  // namespace

class TestDetokenizer : public QObject {
    Q_OBJECT

private slots:
    void asciiPassesThrough() {
        Utf8Stream st;
        QCOMPARE(st.push("hello"), std::string("hello"));
        QCOMPARE(st.flush(), std::string());
    }

    void everySplitOfMultibyteText() {
        // 1-, 2-, 3- and 4-byte characters, including an emoji with a ZWJ sequence.
        const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80 \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB!";
        // All single cut points and all pairs of cut points.
        for (size_t i = 0; i <= text.size(); ++i) {
            for (size_t j = i; j <= text.size(); ++j) {
                bool ok = false;
                const std::string out = streamWithCuts(text, {i, j}, &ok);
                QVERIFY2(ok, qPrintable(QString("chunk not whole characters at cuts %1,%2").arg(i).arg(j)));
                QCOMPARE(out, text);
            }
        }
        // Byte by byte.
        bool ok = false;
        std::vector<size_t> all;
        for (size_t i = 1; i < text.size(); ++i) all.push_back(i);
        QCOMPARE(streamWithCuts(text, all, &ok), text);
        QVERIFY(ok);
    }

    void emojiHeldUntilComplete() {
        Utf8Stream st;
        QCOMPARE(st.push("\xF0"), std::string());
        QCOMPARE(st.push("\x9F"), std::string());
        QCOMPARE(st.push("\x98"), std::string());
        QCOMPARE(st.push("\x80ok"), std::string("\xF0\x9F\x98\x80ok"));
    }

    void invalidBytesBecomeReplacement_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QByteArray>("expected");
        const QByteArray r = QByteArray::fromStdString(kFffd);
        QTest::newRow("stray continuation") << QByteArray("a\x80z") << QByteArray("a") + r + "z";
        QTest::newRow("lead then ascii") << QByteArray("\xC3z") << r + "z";
        QTest::newRow("truncated 3-byte then ascii") << QByteArray("\xE4\xB8z") << r + "z";
        QTest::newRow("C0 overlong") << QByteArray("\xC0\xAF") << r + r;
        QTest::newRow("E0 overlong") << QByteArray("\xE0\x80\xAF") << r + r + r;
        QTest::newRow("surrogate") << QByteArray("\xED\xA0\x80") << r + r + r;
        QTest::newRow("above 10FFFF") << QByteArray("\xF4\x90\x80\x80") << r + r + r + r;
        QTest::newRow("FF") << QByteArray("\xFFx") << r + "x";
        QTest::newRow("two leads") << QByteArray("\xC3\xC3\xA9") << r + QByteArray("\xC3\xA9");
    }

    void invalidBytesBecomeReplacement() {
        QFETCH(QByteArray, input);
        QFETCH(QByteArray, expected);
        Utf8Stream st;
        const std::string out = st.push(input.toStdString()) + st.flush();
        QCOMPARE(QByteArray::fromStdString(out), expected);
    }

    void invalidIsNotHeldForever() {
        // A lead byte followed by a non-continuation resolves as soon as the second byte arrives.
        Utf8Stream st;
        QCOMPARE(st.push("\xE4"), std::string());
        QCOMPARE(st.push("x"), kFffd + "x");
        // A stray continuation byte resolves immediately.
        QCOMPARE(st.push("\xBF"), kFffd);
    }

    void flushReplacesTruncatedTail() {
        Utf8Stream st;
        QCOMPARE(st.push("ab\xF0\x9F"), std::string("ab"));
        QCOMPARE(st.flush(), kFffd);
        QCOMPARE(st.flush(), std::string());
    }

    void stopNotPresent() {
        bool stopped = true;
        QCOMPARE(runStops({"</s>"}, {"hello ", "world"}, &stopped), std::string("hello world"));
        QVERIFY(!stopped);
    }

    void stopSplitAcrossPushes() {
        const std::string text = "The answer is 42.\nUser: next";
        for (size_t n = 1; n <= text.size(); ++n) {
            bool stopped = false;
            QCOMPARE(runStops({"\nUser:"}, splitEvery(text, n), &stopped), std::string("The answer is 42."));
            QVERIFY(stopped);
        }
    }

    void holdsOnlyPossiblePrefix() {
        StopStringMatcher m({"<|end|>"});
        QCOMPARE(m.push("abc<|e"), std::string("abc"));  // "<|e" might still become the stop
        QCOMPARE(m.push("x"), std::string("<|ex"));      // it did not
        QCOMPARE(m.push("a<"), std::string("a"));
        QCOMPARE(m.push("<|end"), std::string("<"));  // the first '<' can no longer start it
        QCOMPARE(m.push("|>tail"), std::string());
        QVERIFY(m.stopped());
        QCOMPARE(m.push("more"), std::string());
        QCOMPARE(m.flush(), std::string());
    }

    void heldTailReleasedByFlush() {
        StopStringMatcher m({"STOP"});
        QCOMPARE(m.push("go ST"), std::string("go "));
        QVERIFY(!m.stopped());
        QCOMPARE(m.flush(), std::string("ST"));
    }

    void stopAtVeryStart() {
        bool stopped = false;
        QCOMPARE(runStops({"###"}, {"###", " after"}, &stopped), std::string());
        QVERIFY(stopped);
        QCOMPARE(runStops({"###"}, {"#", "#", "#x"}, &stopped), std::string());
        QVERIFY(stopped);
    }

    void overlappingStops() {
        bool stopped = false;
        // "abc" and "bc" both complete in one push: the earlier start wins, nothing of either leaks.
        QCOMPARE(runStops({"bc", "abc"}, {"xxabcyy"}, &stopped), std::string("xx"));
        QVERIFY(stopped);
        // A stop that overlaps itself: "aab" inside "aaab".
        QCOMPARE(runStops({"aab"}, {"a", "a", "a", "b"}, &stopped), std::string("a"));
        QVERIFY(stopped);
        // The shorter stop completes first in time: generation ends there.
        QCOMPARE(runStops({"abcd", "bc"}, {"a", "b", "c", "d"}, &stopped), std::string("a"));
        QVERIFY(stopped);
        // Prefix of one stop is the suffix-start of another: hold the longest possible prefix.
        StopStringMatcher m({"xyz", "yzw"});
        QCOMPARE(m.push("1xy"), std::string("1"));
        QCOMPARE(m.push("zq"), std::string());
        QVERIFY(m.stopped());
    }

    void stopWithMultibyteText() {
        // Composed with the UTF-8 stream: a multi-byte stop string split mid-character.
        const std::string text = "r\xC3\xA9sum\xC3\xA9 \xE2\x80\x94 fin";
        const std::string stop = "\xE2\x80\x94";
        for (size_t n = 1; n <= text.size(); ++n) {
            Utf8Stream u;
            StopStringMatcher m({stop});
            std::string out;
            for (const auto& piece : splitEvery(text, n)) {
                const std::string chunk = m.push(u.push(piece));
                QVERIFY(completeUtf8(chunk));
                out += chunk;
            }
            out += m.push(u.flush());
            out += m.flush();
            QCOMPARE(out, std::string("r\xC3\xA9sum\xC3\xA9 "));
        }
    }

    void emptyStopIgnored() {
        bool stopped = true;
        QCOMPARE(runStops({"", "zz"}, {"abc"}, &stopped), std::string("abc"));
        QVERIFY(!stopped);
    }
};

QTEST_APPLESS_MAIN(TestDetokenizer)
#include "tst_detokenizer.moc"
