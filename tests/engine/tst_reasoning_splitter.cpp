// <think>/<answer> routing, with tags split across deltas in every possible way.
#include <QtTest>

#include "runtime/reasoning_splitter.h"

class TestReasoningSplitter : public QObject {
    Q_OBJECT

    static std::pair<std::string, std::string> runChunks(const std::vector<std::string>& chunks, bool start = false) {
        wb::ReasoningSplitter s(start);
        std::string r, c;
        for (const auto& ch : chunks) {
            auto d = s.push(ch);
            r += d.reasoning;
            c += d.content;
        }
        auto d = s.flush();
        return {r + d.reasoning, c + d.content};
    }

private slots:
    void wholeTags() {
        auto [r, c] = runChunks({"<think>Let me look.</think><answer>do(action=\"Back\")</answer>"});
        QCOMPARE(r, std::string("Let me look."));
        QCOMPARE(c, std::string("do(action=\"Back\")"));
    }

    void everySplitPoint() {
        const std::string full = "<think>a<b</think>\n<answer>x < y</answer>";
        for (size_t i = 0; i <= full.size(); ++i)
            for (size_t j = i; j <= full.size(); ++j) {
                auto [r, c] = runChunks({full.substr(0, i), full.substr(i, j - i), full.substr(j)});
                QCOMPARE(r, std::string("a<b"));
                QCOMPARE(c, std::string("\nx < y"));
            }
    }

    void byteByByte() {
        const std::string full = "pre<think>t</think>post";
        std::vector<std::string> chunks;
        for (char ch : full) chunks.push_back(std::string(1, ch));
        auto [r, c] = runChunks(chunks);
        QCOMPARE(r, std::string("t"));
        QCOMPARE(c, std::string("prepost"));
    }

    void startsInReasoning() {
        auto [r, c] = runChunks({"thinking", "</th", "ink>answer"}, true);
        QCOMPARE(r, std::string("thinking"));
        QCOMPARE(c, std::string("answer"));
    }

    void unfinishedTagIsText() {
        auto [r, c] = runChunks({"a <thi"});
        QCOMPARE(r, std::string());
        QCOMPARE(c, std::string("a <thi"));
    }

    void heldBackOnlyWhileAmbiguous() {
        wb::ReasoningSplitter s;
        QCOMPARE(s.push("x <").content, std::string("x "));
        QCOMPARE(s.push("b>").content, std::string("<b>"));
    }
};

QTEST_APPLESS_MAIN(TestReasoningSplitter)
#include "tst_reasoning_splitter.moc"
