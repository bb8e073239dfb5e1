// buildChatPrompt with a checkpoint template (the tiny GLM tokenizer's): the ids equal the reference's way of
// tokenizing the rendered prompt as one string, special tokens parsed, whenever users type no special-token text;
// typed special-token text stays characters; plain text running across a template/message boundary is encoded
// together (a message starting with a newline after the template's "\n").
#include <QtTest>

#include "api/chat_prompt.h"
#include "api/engine.h"
#include "fixtures.h"
#include "models/glm/glm_tiny.h"
#include "api/tokenizer.h"

using namespace wb;

class TestChatPrompt : public QObject {
    Q_OBJECT
    std::unique_ptr<Tokenizer> m_tok;

private slots:
    void initTestCase() {
        const std::string dir = wbtest::tempDir() + "/chat-prompt/glm";
        QVERIFY(writeTinyGlmCheckpoint(dir).ok());
        auto t = Tokenizer::fromHfFolder(dir);
        QVERIFY2(t.ok(), t.ok() ? "" : t.error().message.c_str());
        m_tok = std::move(*t);
        QVERIFY(m_tok->chatTemplate().has_value());
    }

    void equalsWholeStringEncoding() {
        const std::vector<ChatMessage> msgs = {{"system", "Be brief.", {}},
                                               {"user", "\n\nWhat is 2 + 2?  ", {}},
                                               {"assistant", "4", {}},
                                               {"user", " And 3 + 3?\n", {}}};
        auto p = buildChatPrompt(*m_tok, msgs, true, true);
        QVERIFY2(p.ok(), p.ok() ? "" : p.error().message.c_str());
        QVERIFY(p->usedTemplate);
        const std::string whole = "[gMASK]<sop><|system|>\nBe brief.<|user|>\n\n\nWhat is 2 + 2?  <|assistant|>\n4"
                                  "<|user|>\n And 3 + 3?\n<|assistant|>\n";
        QCOMPARE(p->ids, m_tok->encode(whole, false, SpecialTokens::Parse));
        // Thinking off: the template's own <think></think> (ordinary added tokens) follows.
        auto off = buildChatPrompt(*m_tok, msgs, true, false);
        QVERIFY(off.ok());
        QCOMPARE(off->ids, m_tok->encode(whole + "<think></think>", false, SpecialTokens::Parse));
    }

    void typedSpecialTokensStayText() {
        auto p = buildChatPrompt(*m_tok, {{"user", "<|assistant|>[gMASK]", {}}}, true, true);
        QVERIFY(p.ok());
        const std::vector<int32_t> head = m_tok->encode("[gMASK]<sop><|user|>\n", false, SpecialTokens::Parse);
        const std::vector<int32_t> typed = m_tok->encode("<|assistant|>[gMASK]", false, SpecialTokens::Plain);
        const std::vector<int32_t> tail = m_tok->encode("<|assistant|>\n", false, SpecialTokens::Parse);
        std::vector<int32_t> want = head;
        want.insert(want.end(), typed.begin(), typed.end());
        want.insert(want.end(), tail.begin(), tail.end());
        QCOMPARE(p->ids, want);
        for (int32_t id : typed) QVERIFY(id < 256);  // bytes, no control token
    }

    void segmentsMergeAcrossBoundaries() {
        // "\n" from one piece and "\n" from the next become the one "\n\n" run the whole string gives.
        const std::vector<Tokenizer::Segment> segs = {{"<|user|>\n", SpecialTokens::Parse},
                                                      {"\nhi", SpecialTokens::Plain},
                                                      {" there<|assistant|>", SpecialTokens::Parse}};
        QCOMPARE(m_tok->encodeSegments(segs, false),
                 m_tok->encode("<|user|>\n\nhi there<|assistant|>", false, SpecialTokens::Parse));
    }
};

QTEST_GUILESS_MAIN(TestChatPrompt)
#include "tst_chat_prompt.moc"
