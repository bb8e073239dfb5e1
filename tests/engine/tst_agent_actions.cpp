// The phone agent's action parser (engine/agent/action_parser.cpp) over a table of answers in the model's real
// format (AutoGLM-Phone-9B / Open-AutoGLM: <think>…</think><answer>do(...)</answer>) and malformed ones, each row
// asserting the parsed fields; and the 0-999 grid → pixel mapping.
#include <QtTest>

#include "agent/action_parser.h"
#include "api/agent.h"

using namespace wb;

Q_DECLARE_METATYPE(wb::AgentActionKind)

class TestAgentActions : public QObject {
    Q_OBJECT

private slots:
    void parse_data() {
        QTest::addColumn<QString>("answer");
        QTest::addColumn<bool>("ok");
        QTest::addColumn<AgentActionKind>("kind");
        QTest::addColumn<QString>("name");
        QTest::addColumn<QPoint>("point");  // (-1,-1): none
        QTest::addColumn<QPoint>("start");
        QTest::addColumn<QPoint>("end");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("app");
        QTest::addColumn<QString>("message");
        QTest::addColumn<double>("duration");  // -1: none
        QTest::addColumn<QString>("note");     // a substring of the warning (ok rows) or of the error

        const QPoint n(-1, -1);
        using K = AgentActionKind;
        auto row = [&](const char* tag, const char* answer, bool ok, K kind, const char* name, QPoint point = {-1, -1},
                       QPoint start = {-1, -1}, QPoint end = {-1, -1}, const QString& text = {},
                       const QString& app = {}, const QString& message = {}, double duration = -1,
                       const QString& note = {}) {
            QTest::newRow(tag) << QString::fromUtf8(answer) << ok << kind << QString::fromUtf8(name) << point << start
                               << end << text << app << message << duration << note;
        };
        // Real format, every action name of the reference agent.
        row("tap", "<think>The search box is at the top.</think><answer>do(action=\"Tap\", element=[500,120])</answer>",
            true, K::Tap, "Tap", {500, 120});
        row("tap sensitive",
            "<think>Pay.</think><answer>do(action=\"Tap\", element=[512, 873], message=\"Important: confirm payment\")"
            "</answer>",
            true, K::Tap, "Tap", {512, 873}, n, n, {}, {}, "Important: confirm payment");
        row("double tap", "<answer>do(action=\"Double Tap\", element=[10, 999])</answer>", true, K::DoubleTap,
            "Double Tap", {10, 999});
        row("long press", "<think>x</think>\n<answer>do(action=\"Long Press\", element=[300,400])</answer>", true,
            K::LongPress, "Long Press", {300, 400});
        row("swipe",
            "<think>Scroll down.</think><answer>do(action=\"Swipe\", start=[500, 800], end=[500, 200])</answer>", true,
            K::Swipe, "Swipe", n, {500, 800}, {500, 200});
        row("type", "<answer>do(action=\"Type\", text=\"coffee near me\")</answer>", true, K::Type, "Type", n, n, n,
            "coffee near me");
        row("type escapes", "<answer>do(action=\"Type\", text=\"say \\\"hi\\\"\\nline 2 \\u4f60\\x41\")</answer>", true,
            K::Type, "Type", n, n, n,
            QString::fromUtf8("say \"hi\"\nline 2 \xe4\xbd\xa0"
                              "A"));
        row("type single quotes", "<answer>do(action='Type', text='it\\'s \"fine\"')</answer>", true, K::Type, "Type",
            n, n, n, "it's \"fine\"");
        row("type chinese raw newline", "<answer>do(action=\"Type\", text=\"北京\n天气\")</answer>", true, K::Type,
            "Type", n, n, n, QString::fromUtf8("北京\n天气"));
        row("type unescaped quote (lenient)", "<answer>do(action=\"Type\", text=\"the \"best\" pizza\")</answer>", true,
            K::Type, "Type", n, n, n, "the \"best\" pizza", {}, {}, -1, "leniently");
        row("type name", "<answer>do(action=\"Type_Name\", text=\"张三\")</answer>", true, K::TypeName, "Type_Name", n,
            n, n, QString::fromUtf8("张三"));
        row("launch", "<think>Open settings.</think><answer>do(action=\"Launch\", app=\"Settings\")</answer>", true,
            K::Launch, "Launch", n, n, n, {}, "Settings");
        row("back", "<answer>do(action=\"Back\")</answer>", true, K::Back, "Back");
        row("home", "<answer>do(action=\"Home\")</answer>", true, K::Home, "Home");
        row("wait seconds", "<answer>do(action=\"Wait\", duration=\"3 seconds\")</answer>", true, K::Wait, "Wait", n, n,
            n, {}, {}, {}, 3.0);
        row("wait number", "<answer>do(action=\"Wait\", duration=2.5)</answer>", true, K::Wait, "Wait", n, n, n, {}, {},
            {}, 2.5);
        row("take over", "<answer>do(action=\"Take_over\", message=\"Please log in\")</answer>", true, K::TakeOver,
            "Take_over", n, n, n, {}, {}, "Please log in");
        row("note", "<answer>do(action=\"Note\", message=\"True\")</answer>", true, K::Note, "Note", n, n, n, {}, {},
            "True");
        row("call api", "<answer>do(action=\"Call_API\", instruction=\"summarise the page\")</answer>", true,
            K::CallApi, "Call_API");
        row("interact", "<answer>do(action=\"Interact\")</answer>", true, K::Interact, "Interact");
        row("finish", "<think>Done.</think><answer>finish(message=\"The alarm is set for 7:00.\")</answer>", true,
            K::Finish, "finish", n, n, n, {}, {}, "The alarm is set for 7:00.");
        row("finish lenient", "<answer>finish(message=\"Found \"Blue Bottle\" nearby\")</answer>", true, K::Finish,
            "finish", n, n, n, {}, {}, "Found \"Blue Bottle\" nearby", -1, "leniently");
        // Tolerance: tags, whitespace, cut streams, several think sections.
        row("no answer tag", "do(action=\"Tap\", element=[1,2])", true, K::Tap, "Tap", {1, 2});
        row("missing </answer>", "<think>a</think><answer>do(action=\"Home\")", true, K::Home, "Home");
        row("whitespace",
            "  <think>\n a \n</think>\n\n<answer>\n  do( action = \"Tap\" ,element = [ 7 , 8 ] , )  \n"
            "</answer>\n",
            true, K::Tap, "Tap", {7, 8});
        row("two think sections",
            "<think>one</think><think>do(action=\"Back\")</think><answer>do(action=\"Home\")"
            "</answer>",
            true, K::Home, "Home");
        row("think without answer tag", "<think>look</think>do(action=\"Back\")", true, K::Back, "Back");
        row("float coords", "<answer>do(action=\"Tap\", element=[500.4, 299.6])</answer>", true, K::Tap, "Tap",
            {500, 300});
        row("tuple coords", "<answer>do(action=\"Tap\", element=(5, 6))</answer>", true, K::Tap, "Tap", {5, 6});
        row("trailing text", "<answer>do(action=\"Back\") and then more</answer>", true, K::Back, "Back", n, n, n, {},
            {}, {}, -1, "after the call");
        row("unknown name", "<answer>do(action=\"Scroll\", element=[1, 2])</answer>", true, K::Unknown, "Scroll",
            {1, 2}, n, n, {}, {}, {}, -1, "unknown action \"Scroll\"");
        row("lowercase name", "<answer>do(action=\"double_tap\", element=[3, 4])</answer>", true, K::DoubleTap,
            "double_tap", {3, 4});
        row("off grid", "<answer>do(action=\"Tap\", element=[1500, 20])</answer>", true, K::Tap, "Tap", {1500, 20}, n,
            n, {}, {}, {}, -1, "outside the 0-999 grid");
        // Malformed.
        row("empty", "", false, K::Unknown, "", n, n, n, {}, {}, {}, -1, "empty");
        row("cut in thinking", "<think>I should tap the butt", false, K::Unknown, "", n, n, n, {}, {}, {}, -1,
            "thinking never ended");
        row("prose", "<think>x</think><answer>I will tap the button.</answer>", false, K::Unknown, "", n, n, n, {}, {},
            {}, -1, "no do(...) or finish(...)");
        row("cut in call", "<answer>do(action=\"Tap\", element=[500,", false, K::Unknown, "", n, n, n, {}, {}, {}, -1,
            "cannot read the call");
        row("tap without element", "<answer>do(action=\"Tap\")</answer>", false, K::Unknown, "", n, n, n, {}, {}, {},
            -1, "needs element");
        row("tap one coord", "<answer>do(action=\"Tap\", element=[5])</answer>", false, K::Unknown, "", n, n, n, {}, {},
            {}, -1, "needs element");
        row("swipe without end", "<answer>do(action=\"Swipe\", start=[1,2])</answer>", false, K::Unknown, "", n, n, n,
            {}, {}, {}, -1, "Swipe needs");
        row("no action", "<answer>do(element=[1,2])</answer>", false, K::Unknown, "", n, n, n, {}, {}, {}, -1,
            "without action=");
        row("positional do", "<answer>do(\"Tap\", [1,2])</answer>", false, K::Unknown, "", n, n, n, {}, {}, {}, -1,
            "keyword arguments only");
        row("not evaluated", "<answer>do(action=__import__('os').system('x'))</answer>", false, K::Unknown, "", n, n, n,
            {}, {}, {}, -1, "cannot read the call");
        row("bad wait", "<answer>do(action=\"Wait\", duration=\"a while\")</answer>", false, K::Unknown, "", n, n, n,
            {}, {}, {}, -1, "not a number of seconds");
        row("unterminated string", "<answer>do(action=\"Launch\", app=\"Sett</answer>", false, K::Unknown, "", n, n, n,
            {}, {}, {}, -1, "cannot read the call");
    }

    void parse() {
        QFETCH(QString, answer);
        QFETCH(bool, ok);
        QFETCH(AgentActionKind, kind);
        QFETCH(QString, name);
        QFETCH(QPoint, point);
        QFETCH(QPoint, start);
        QFETCH(QPoint, end);
        QFETCH(QString, text);
        QFETCH(QString, app);
        QFETCH(QString, message);
        QFETCH(double, duration);
        QFETCH(QString, note);
        const std::string in = answer.toStdString();
        const AgentParse p = parseAgentAnswer(in);
        QCOMPARE(QString::fromStdString(p.raw), answer);  // the raw text is kept, parsed or not
        QVERIFY2(p.ok() == ok, (p.error + " | " + p.warning).c_str());
        auto qp = [](const std::optional<AgentPoint>& v) { return v ? QPoint(v->x, v->y) : QPoint(-1, -1); };
        if (!ok) {
            QVERIFY(!p.error.empty());
            QVERIFY2(QString::fromStdString(p.error).contains(note), p.error.c_str());
            QCOMPARE(p.action.kind, AgentActionKind::Unknown);
            return;
        }
        QCOMPARE(p.action.kind, kind);
        QCOMPARE(QString::fromStdString(p.action.name), name);
        QCOMPARE(qp(p.action.point), point);
        QCOMPARE(qp(p.action.start), start);
        QCOMPARE(qp(p.action.end), end);
        QCOMPARE(QString::fromStdString(p.action.text), text);
        QCOMPARE(QString::fromStdString(p.action.app), app);
        QCOMPARE(QString::fromStdString(p.action.message), message);
        QCOMPARE(p.action.durationSeconds.value_or(-1), duration);
        QVERIFY(!p.action.line.empty());
        if (note.isEmpty())
            QVERIFY2(p.warning.empty(), p.warning.c_str());
        else
            QVERIFY2(QString::fromStdString(p.warning).contains(note), p.warning.c_str());
    }

    void keepsArgsAndLine() {
        const AgentParse p =
            parseAgentAnswer("<answer>do(action=\"Call_API\", instruction=\"sum\\nup\", extra=[1, 2])</answer>");
        QVERIFY(p.ok());
        QCOMPARE(p.action.instruction, std::string("sum\nup"));
        QCOMPARE(p.action.args.at("extra"), std::string("[1, 2]"));
        QCOMPARE(p.action.args.at("action"), std::string("\"Call_API\""));
        QCOMPARE(p.action.line, std::string("do(action=\"Call_API\", instruction=\"sum\\nup\", extra=[1, 2])"));
        QVERIFY(parseAgentAnswer("<answer>do(action=\"Tap\", element=[1,2], message=\"pay\")").action.sensitive());
        QVERIFY(!parseAgentAnswer("<answer>do(action=\"Tap\", element=[1,2])").action.sensitive());
    }

    void literals() {
        auto read = [](const char* s, agent::PyValue& v) {
            size_t pos = 0;
            std::string err;
            return agent::readPyLiteral(s, pos, v, err);
        };
        agent::PyValue v;
        QVERIFY(read("-42", v) && v.kind == agent::PyValue::Kind::Int && v.i == -42);
        QVERIFY(read("1e3", v) && v.kind == agent::PyValue::Kind::Float && v.f == 1000.0);
        QVERIFY(read("r'a\\nb'", v) && v.str == "a\\nb");
        QVERIFY(read("'''x'y'''", v) && v.str == "x'y");
        QVERIFY(read("'a' \"b\"", v) && v.str == "ab");
        QVERIFY(read("'\\101\\t'", v) && v.str == "A\t");
        QVERIFY(read("[True, None, [1, 'x'],]", v) && v.items.size() == 3 && v.items[0].b &&
                v.items[1].kind == agent::PyValue::Kind::None && v.items[2].items[1].str == "x");
        QVERIFY(!read("os.system", v));
        QVERIFY(read("[[[[1]]]]", v) && v.items[0].items[0].items[0].items[0].i == 1);
        std::string err;
        size_t pos = 0;
        QVERIFY(!agent::readPyLiteral(std::string(100000, '['), pos, v, err));  // no stack overflow
        QVERIFY(err.find("nested too deep") != std::string::npos);
        QVERIFY(!read("'\\x4'", v));
    }

    void pixels() {
        // int(x / 1000 * width), as the reference agent maps them; clamped into the screen.
        QCOMPARE(agentPointToPixel({500, 500}, 1080, 2400), (AgentPixel{540, 1200}));
        QCOMPARE(agentPointToPixel({999, 999}, 1080, 2400), (AgentPixel{1078, 2397}));
        QCOMPARE(agentPointToPixel({0, 0}, 1080, 2400), (AgentPixel{0, 0}));
        QCOMPARE(agentPointToPixel({1000, 1500}, 100, 200), (AgentPixel{99, 199}));
        QCOMPARE(agentPointToPixel({333, 1}, 360, 800), (AgentPixel{119, 0}));
    }
};

QTEST_APPLESS_MAIN(TestAgentActions)
#include "tst_agent_actions.moc"
