// The phone agent's loop end to end (engine/agent/, `wb agent`), over a folder of 3 generated screenshots:
//  - against an OpenAI-compatible test server in this process (cpp-httplib on loopback) that answers a scripted
//    sequence of streamed answers in AutoGLM-Phone-9B's real format. It stands in for the model itself, which no
//    machine here has (9B parameters, a vLLM server elsewhere): what is tested is the request the agent sends
//    (its sampling, one screenshot per turn, earlier images stripped), the split, the parse, the timings, the
//    trace and the marks drawn on the exported PNGs, at their pixel positions;
//  - against the engine in process with a tiny random GLM-4.1V: its answers are noise and do not parse, and the
//    run must record the parse error and stop (or go on) cleanly.
#include <QtTest>
#include <atomic>
#include <bit>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent_session.h"
#include "agent/annotate.h"
#include "api/agent.h"
#include "agent_test_server.h"
#include "api/engine.h"
#include "media/image.h"
#include "models/glm/glm_tiny.h"
#include "serve/openai_protocol.h"
#include "test_images.h"

using namespace wb;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kW = 200, kH = 400;

using namespace wbtest;


json readJson(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str(), nullptr, false);
}

std::array<uint8_t, 3> px(const Image& img, int x, int y) {
    const uint8_t* p = img.pixel(x, y);
    return {p[0], p[1], p[2]};
}

std::array<uint8_t, 3> rgb(const json& c) {
    return {uint8_t(c[0].get<int>()), uint8_t(c[1].get<int>()), uint8_t(c[2].get<int>())};
}

// The real format's answers of the first run: a tap, a swipe, finish.
const char* kTapAnswer =
    "<think>The Settings icon is in the upper middle.</think><answer>do(action=\"Tap\", "
    "element=[500,250])</answer>";
const char* kSwipeThinking = "The list continues below; scroll up to see more.";
const char* kSwipeAnswer = "<answer>do(action=\"Swipe\", start=[500, 800], end=[500, 200])</answer>";
const char* kFinishAnswer = "<think>Wi-Fi is on.</think><answer>finish(message=\"Wi-Fi is \\\"on\\\" now.\")</answer>";

}  // namespace

class TestAgentSession : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    fs::path m_screens;

private slots:
    void initTestCase() {
        QVERIFY(m_tmp.isValid());
        m_screens = fs::path(m_tmp.path().toStdString()) / "screens";
        fs::create_directories(m_screens);
        // Names whose byte order is the step order; a non-image file beside them is ignored.
        for (int i = 0; i < 3; ++i) {
            auto png = encodePng(wbtest::procedural(kW, kH, i));
            QVERIFY(png.ok());
            std::ofstream(m_screens / ("screen_0" + std::to_string(i) + ".png"), std::ios::binary)
                .write(reinterpret_cast<const char*>(png->data()), std::streamsize(png->size()));
        }
        std::ofstream(m_screens / "notes.txt") << "not a screenshot\n";
    }

    // The labels' font: capitals for lower case, '?' for what it lacks, and a glyph as drawn.
    void bitmapFont() {
        QCOMPARE(agent::glyphRows('a'), agent::glyphRows('A'));
        QCOMPARE(agent::glyphRows('\xc3'), agent::glyphRows('?'));
        QVERIFY(agent::glyphRows('T') != agent::glyphRows('?'));
        Image img;
        img.width = 20;
        img.height = 10;
        img.rgb.assign(20 * 10 * 3, 0);
        agent::drawText(img, 1, 1, 1, "T_", {255, 255, 255});
        auto on = [&](int x, int y) { return img.pixel(x, y)[0] == 255; };
        for (int x = 1; x <= 5; ++x) QVERIFY(on(x, 1));  // T's bar
        for (int y = 2; y <= 7; ++y) QVERIFY(on(3, y) && !on(2, y) && !on(4, y));  // its stem
        for (int x = 7; x <= 11; ++x) QVERIFY(on(x, 7) && !on(x, 6));             // the underscore
        QVERIFY(!on(6, 1) && !on(0, 0));
        // A label too long for its badge is cut with "..", never drawn past the margin.
        AgentMark m;
        m.shape = AgentMark::Shape::Badge;
        m.width = 40;
        m.height = 12;
        m.label = "Call_API with a long name";
        m.color = {230, 190, 0};
        const agent::BadgeText t = agent::badgeText(m);
        QCOMPARE(t.text, std::string("Call.."));
        QCOMPARE(t.scale, 1);
        QCOMPARE(t.color, (std::array<uint8_t, 3>{0, 0, 0}));  // dark on the light badge
        QVERIFY(t.x >= 1 && t.x + 6 * 6 - 1 <= 39);
    }

    void splitsThinking() {
        std::string r, a;
        agent::splitThinking("<think>x</think><answer>do(action=\"Back\")</answer>", r, a);
        QCOMPARE(r, std::string("x"));
        QCOMPARE(a, std::string("do(action=\"Back\")"));
        r.clear();
        agent::splitThinking("prefilled thinking</think>\n<answer>do(action=\"Home\")", r, a);
        QCOMPARE(r, std::string("prefilled thinking"));
        QCOMPARE(a, std::string("do(action=\"Home\")"));
        r.clear();
        agent::splitThinking("<think>cut short", r, a);
        QCOMPARE(r, std::string("cut short"));
        QVERIFY(a.empty());
        AgentReply cut;
        cut.reasoning = "cut short";
        QVERIFY(parseAgentAnswer(agent::parserInput(cut)).error.find("thinking never ended") != std::string::npos);
    }

    void systemPromptHasDateAndLanguage() {
        const std::string p = fillAgentSystemPrompt(defaultAgentSystemPrompt(), "2026-12-05, Saturday");
        QVERIFY(p.find("2026-12-05, Saturday") != std::string::npos);
        QVERIFY(p.find("{date}") == std::string::npos);
        for (const char* a : {"Tap", "Double Tap", "Long Press", "Swipe", "Type_Name", "Launch", "Back", "Home", "Wait",
                              "Take_over", "Note", "Call_API", "Interact", "finish(message="})
            QVERIFY2(p.find(a) != std::string::npos, a);
        const std::string today = fillAgentSystemPrompt("date: {date}");
        QVERIFY(today.size() > std::string("date: ").size() + 9 && today.find("{date}") == std::string::npos);
    }

    // `wb agent --url` against the scripted server: the requests, the JSON lines, trace.json, the annotated PNGs.
    void cliAgainstScriptedServer() {
#ifndef WB_EXE
        QSKIP("the wb executable is not built");
#else
        ScriptedServer server({contentStream(kTapAnswer, 900, 21),
                               reasoningStream(kSwipeThinking, kSwipeAnswer, 950, 30),
                               contentStream(kFinishAnswer, 990, 18)});
        const fs::path run = fs::path(m_tmp.path().toStdString()) / "run_cli";
        QProcess p;
        p.start(WB_EXE, {"agent", "--url", QString::fromStdString(server.url()), "--task", "Turn on Wi-Fi", "--screens",
                         QString::fromStdString(m_screens.string()), "--out", QString::fromStdString(run.string()),
                         "--date", "2026-12-05", "--json"});
        QVERIFY(p.waitForFinished(60000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(p.exitCode() == 0, qPrintable(err));
        QVERIFY2(err.contains("finished after 3 step(s)"), qPrintable(err));
        const QList<QByteArray> lines = p.readAllStandardOutput().trimmed().split('\n');
        QCOMPARE(lines.size(), 3);
        for (int i = 0; i < 3; ++i) {
            const json j = json::parse(lines[i].toStdString(), nullptr, false);
            QVERIFY(j.is_object());
            QCOMPARE(j["step"].get<int>(), i + 1);
        }

        // What the model was sent: the agent's sampling, one screenshot a request, earlier images stripped.
        const std::vector<json> bodies = server.bodies();
        QCOMPARE(bodies.size(), size_t(3));
        for (size_t i = 0; i < bodies.size(); ++i) {
            const json& b = bodies[i];
            QCOMPARE(b["model"].get<std::string>(), std::string("autoglm-phone-9b"));
            QCOMPARE(b["temperature"].get<double>(), 0.0);
            QCOMPARE(b["top_p"].get<double>(), 0.85);
            QCOMPARE(b["frequency_penalty"].get<double>(), 0.2);
            QCOMPARE(b["max_tokens"].get<int>(), 3000);
            QVERIFY(b["stream"].get<bool>());
            const json& msgs = b["messages"];
            QCOMPARE(msgs.size(), 2 + 2 * i);  // system, then (user, assistant) per earlier turn, then this user turn
            QCOMPARE(msgs[0]["role"].get<std::string>(), std::string("system"));
            QVERIFY(msgs[0]["content"].get<std::string>().find("2026-12-05") != std::string::npos);
            int images = 0;
            for (const json& m : msgs)
                if (m["content"].is_array())
                    for (const json& part : m["content"]) images += part["type"] == "image_url";
            QCOMPARE(images, 1);
            const json& last = msgs.back();
            QCOMPARE(last["content"][0]["type"].get<std::string>(), std::string("image_url"));
            std::ifstream f(m_screens / ("screen_0" + std::to_string(i) + ".png"), std::ios::binary);
            const std::vector<uint8_t> png((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            QCOMPARE(last["content"][0]["image_url"]["url"].get<std::string>(),
                     "data:image/png;base64," + encodeBase64(png));
            const std::string text = last["content"][1]["text"].get<std::string>();
            if (i == 0)
                QVERIFY(text.rfind("Turn on Wi-Fi\n\n{\"current_app\"", 0) == 0);
            else
                QVERIFY(text.rfind("** Screen Info **", 0) == 0);
        }
        // The model's earlier turn as the reference keeps it; the earlier user turn is text only.
        const json& second = bodies[1]["messages"];
        QCOMPARE(second[1]["content"].is_string(), true);
        QCOMPARE(second[2]["role"].get<std::string>(), std::string("assistant"));
        QCOMPARE(second[2]["content"].get<std::string>(),
                 std::string("<think>The Settings icon is in the upper middle.</think><answer>do(action=\"Tap\", "
                             "element=[500,250])</answer>"));

        // The trace.
        const json t = readJson(run / "trace.json");
        QVERIFY(t.is_object());
        QCOMPARE(t["status"].get<std::string>(), std::string("finished"));
        QCOMPARE(t["status_detail"].get<std::string>(), std::string("Wi-Fi is \"on\" now."));
        QCOMPARE(t["task"].get<std::string>(), std::string("Turn on Wi-Fi"));
        QCOMPARE(t["target"].get<std::string>(), "autoglm-phone-9b @ " + server.url());
        QCOMPARE(t["steps"].size(), size_t(3));
        const json& s1 = t["steps"][0];
        const json& s2 = t["steps"][1];
        const json& s3 = t["steps"][2];
        QCOMPARE(s1["screen"]["name"].get<std::string>(), std::string("screen_00.png"));
        QCOMPARE(s1["screen"]["width"].get<int>(), kW);
        QCOMPARE(s1["action"]["name"].get<std::string>(), std::string("Tap"));
        QCOMPARE(s1["action"]["element"], json::array({500, 250}));
        QCOMPARE(s1["action"]["element_px"], json::array({100, 100}));
        QCOMPARE(s1["reply"]["reasoning"].get<std::string>(), std::string("The Settings icon is in the upper middle."));
        QCOMPARE(s2["action"]["name"].get<std::string>(), std::string("Swipe"));
        QCOMPARE(s2["action"]["start_px"], json::array({100, 320}));
        QCOMPARE(s2["action"]["end_px"], json::array({100, 80}));
        QCOMPARE(s2["reply"]["reasoning"].get<std::string>(), std::string(kSwipeThinking));
        QCOMPARE(s3["action"]["kind"].get<std::string>(), std::string("finish"));
        QCOMPARE(s1["executed"].get<std::string>(), std::string("not executed (replay)"));
        for (const json& s : t["steps"]) {
            const json& tm = s["timings"];
            QVERIFY(tm["ttft_ms"].is_number() && tm["think_end_ms"].is_number() && tm["total_ms"].is_number());
            QVERIFY(tm["ttft_ms"].get<double>() > 0);
            QVERIFY(tm["think_end_ms"].get<double>() >= tm["ttft_ms"].get<double>());
            QVERIFY(tm["total_ms"].get<double>() >= tm["think_end_ms"].get<double>());
            QVERIFY(s["usage"]["prompt_tokens"].get<int>() >= 900);
            QVERIFY(s["usage"]["completion_tokens"].get<int>() > 0);
            // Images as file references, never inlined.
            const json& msgs = s["request"]["messages"];
            const json& img = msgs.back()["content"][0];
            QCOMPARE(img["type"].get<std::string>(), std::string("image"));
            QCOMPARE(img["file"].get<std::string>(), s["screen"]["file"].get<std::string>());
            QVERIFY(fs::exists(run / s["screen"]["file"].get<std::string>()));
        }
        QVERIFY(fs::file_size(run / "trace.json") < 200000);

        // The marks, where the actions land, on the exported PNGs.
        auto original = [&](int i) { return wbtest::procedural(kW, kH, i); };
        auto a1 = loadImageFile((run / "annotated/step_001.png").string());
        QVERIFY(a1.ok());
        QCOMPARE(a1->width, kW);
        const json& ring = s1["marks"][0];
        QCOMPARE(ring["shape"].get<std::string>(), std::string("ring"));
        QCOMPARE(ring["x"].get<int>(), 100);
        QCOMPARE(ring["y"].get<int>(), 100);
        const int r = ring["radius"].get<int>();
        QCOMPARE(r, 10);  // a twentieth of the short side
        const auto red = rgb(ring["color"]);
        for (auto [dx, dy] : {std::pair{r - 1, 0}, {-(r - 1), 0}, {0, r - 1}, {0, -(r - 1)}})
            QCOMPARE(px(*a1, 100 + dx, 100 + dy), red);
        QCOMPARE(px(*a1, 100, 100), px(original(0), 100, 100));                  // the point itself stays visible
        QCOMPARE(px(*a1, 100 + r + 3, 100), px(original(0), 100 + r + 3, 100));  // nothing outside the ring

        auto a2 = loadImageFile((run / "annotated/step_002.png").string());
        QVERIFY(a2.ok());
        const json& arrow = s2["marks"][1];
        QCOMPARE(arrow["shape"].get<std::string>(), std::string("arrow"));
        QCOMPARE((std::array{arrow["x1"].get<int>(), arrow["y1"].get<int>(), arrow["x2"].get<int>(),
                             arrow["y2"].get<int>()}),
                 (std::array{100, 320, 100, 80}));
        const auto blue = rgb(arrow["color"]);
        QCOMPARE(px(*a2, 100, 200), blue);  // the shaft
        QCOMPARE(px(*a2, 100, 320), blue);  // the start's disc
        QCOMPARE(px(*a2, 100, 81), blue);   // the head
        QCOMPARE(px(*a2, 130, 200), px(original(1), 130, 200));

        auto a3 = loadImageFile((run / "annotated/step_003.png").string());
        QVERIFY(a3.ok());
        const json& badge = s3["marks"][0];
        QCOMPARE(badge["shape"].get<std::string>(), std::string("badge"));
        QCOMPARE(badge["label"].get<std::string>(), std::string("finish"));
        const int bx = badge["x"].get<int>(), by = badge["y"].get<int>();
        QCOMPARE(bx, (kW - kW / 3) / 2);
        QCOMPARE(by, kH / 20);
        QCOMPARE(px(*a3, bx + 1, by + 1), rgb(badge["color"]));
        QCOMPARE(px(*a3, bx + badge["width"].get<int>() - 1, by + badge["height"].get<int>() - 1), rgb(badge["color"]));
        QCOMPARE(px(*a3, 100, 300), px(original(2), 100, 300));
        // Its label, "finish", in the 5 x 7 font: white on the dark green, centred, every lit dot and no more.
        AgentMark bm;
        bm.shape = AgentMark::Shape::Badge;
        bm.x = bx;
        bm.y = by;
        bm.width = badge["width"].get<int>();
        bm.height = badge["height"].get<int>();
        bm.color = rgb(badge["color"]);
        bm.label = "finish";
        const agent::BadgeText text = agent::badgeText(bm);
        QCOMPARE(text.text, std::string("finish"));
        QCOMPARE(text.scale, 1);  // 16 px high with a 2 px margin: room for one pixel a dot
        QCOMPARE(text.color, (std::array<uint8_t, 3>{255, 255, 255}));
        int lit = 0, expected = 0;
        for (char c : std::string("finish"))
            for (int r = 0; r < agent::kGlyphHeight; ++r) expected += std::popcount(unsigned(agent::glyphRows(c)[r]));
        for (int y = by; y < by + bm.height; ++y)
            for (int x = bx; x < bx + bm.width; ++x) lit += px(*a3, x, y) == text.color;
        QCOMPARE(lit, expected * text.scale * text.scale);
        QCOMPARE(px(*a3, text.x, text.y), text.color);                 // F's top-left dot
        QCOMPARE(px(*a3, text.x + 5, text.y), rgb(badge["color"]));  // the gap after it
#endif
    }

    // The session in process: the other marks, a malformed answer stopping or skipped, a server error.
    void sessionParseErrorPolicies_data() {
        QTest::addColumn<bool>("goOn");
        QTest::newRow("stop") << false;
        QTest::newRow("continue") << true;
    }
    void sessionParseErrorPolicies() {
        QFETCH(bool, goOn);
        ScriptedServer server(
            {contentStream("<think>hold it</think><answer>do(action=\"Long Press\", element=[250, 500])"
                           "</answer>",
                           100, 10),
             contentStream("<think>I think I should tap the button</think><answer>I will tap it"
                           "</answer>",
                           100, 10),
             contentStream("<think>twice</think><answer>do(action=\"Double Tap\", element=[750,750])", 100, 10)});
        auto target = makeOpenAiAgentTarget(server.url(), "");
        QVERIFY2(target.ok(), target.ok() ? "" : target.error().message.c_str());
        auto source = makeReplayScreenSource(m_screens.string());
        QVERIFY(source.ok());
        AgentOptions o;
        o.task = "edit the photo";
        o.onParseError = goOn ? AgentParseErrorPolicy::Continue : AgentParseErrorPolicy::Stop;
        AgentSession session(**target, **source, o);
        int seen = 0;
        session.run([&](const AgentStep&) { ++seen; });
        const auto& steps = session.steps();
        QCOMPARE(seen, int(steps.size()));
        QCOMPARE(steps[0].parse.action.kind, AgentActionKind::LongPress);
        QVERIFY(!steps[1].parse.ok());
        QVERIFY(steps[1].parse.error.find("no do(...) or finish(...)") != std::string::npos);
        QCOMPARE(steps[1].parse.raw, std::string("I will tap it"));
        if (!goOn) {
            QCOMPARE(steps.size(), size_t(2));
            QCOMPARE(session.stopReason(), AgentStopReason::ParseError);
            QVERIFY(session.stopDetail().find("step 2") != std::string::npos);
            return;
        }
        QCOMPARE(steps.size(), size_t(3));
        QCOMPARE(session.stopReason(), AgentStopReason::ScreensExhausted);
        QCOMPARE(steps[2].parse.action.kind, AgentActionKind::DoubleTap);  // a missing </answer> is fine

        const fs::path run = fs::path(m_tmp.path().toStdString()) / "run_session";
        AgentTraceWriter trace(run.string());
        QVERIFY(trace.write(session).ok());
        // Long press: a ring with a disc inside; double tap: two rings, the centre untouched; parse error: a badge.
        auto a1 = loadImageFile((run / "annotated/step_001.png").string());
        auto a2 = loadImageFile((run / "annotated/step_002.png").string());
        auto a3 = loadImageFile((run / "annotated/step_003.png").string());
        QVERIFY(a1.ok() && a2.ok() && a3.ok());
        QCOMPARE(steps[0].marks.size(), size_t(2));
        const std::array<uint8_t, 3> magenta = steps[0].marks[0].color;
        QCOMPARE(px(*a1, 50, 200), magenta);      // the disc at (int(0.25*200), int(0.5*400))
        QCOMPARE(px(*a1, 50 + 9, 200), magenta);  // the ring
        QVERIFY(px(*a1, 50 + 5, 200) != magenta || px(wbtest::procedural(kW, kH, 0), 55, 200) == magenta);
        QCOMPARE(steps[2].marks.size(), size_t(2));
        const std::array<uint8_t, 3> orange = steps[2].marks[0].color;
        QVERIFY(orange != magenta);
        QCOMPARE(px(*a3, 150 + 9, 300), orange);                             // outer ring
        QCOMPARE(px(*a3, 150 + steps[2].marks[1].radius - 1, 300), orange);  // inner ring
        QCOMPARE(px(*a3, 150, 300), px(wbtest::procedural(kW, kH, 2), 150, 300));
        QCOMPARE(steps[1].marks.size(), size_t(1));
        QCOMPARE(steps[1].marks[0].label, std::string("parse error"));
        QCOMPARE(px(*a2, steps[1].marks[0].x + 2, steps[1].marks[0].y + 2), steps[1].marks[0].color);
        const json t = readJson(run / "trace.json");
        QCOMPARE(t["on_parse_error"].get<std::string>(), std::string("continue"));
        QCOMPARE(t["steps"][1]["action"]["ok"].get<bool>(), false);
        QCOMPARE(t["steps"][1]["action"]["raw"].get<std::string>(), std::string("I will tap it"));

        // Reloaded, the run is the one that was written.
        auto back = readAgentTrace(run.string());
        QVERIFY2(back.ok(), back.ok() ? "" : back.error().message.c_str());
        QCOMPARE(back->task, std::string("edit the photo"));
        QCOMPARE(back->status, std::string("screens_exhausted"));
        QCOMPARE(back->systemPrompt, session.systemPrompt());
        QCOMPARE(back->steps.size(), steps.size());
        for (size_t i = 0; i < steps.size(); ++i) {
            const AgentStep& a = steps[i];
            const AgentStep& b = back->steps[i];
            QCOMPARE(b.index, a.index);
            QCOMPARE(*b.screen.bytes, *a.screen.bytes);
            QCOMPARE(b.screen.width, a.screen.width);
            QCOMPARE(b.reply.answer, a.reply.answer);
            QCOMPARE(b.reply.reasoning, a.reply.reasoning);
            QCOMPARE(b.reply.ttftMs, a.reply.ttftMs);
            QCOMPARE(b.reply.thinkEndMs, a.reply.thinkEndMs);
            QCOMPARE(b.reply.totalMs, a.reply.totalMs);
            QCOMPARE(b.reply.completionTokens, a.reply.completionTokens);
            QCOMPARE(b.parse.ok(), a.parse.ok());
            QCOMPARE(b.parse.action.kind, a.parse.action.kind);
            QCOMPARE(b.parse.action.point, a.parse.action.point);
            QCOMPARE(b.marks.size(), a.marks.size());
            for (size_t k = 0; k < a.marks.size(); ++k) {
                QCOMPARE(b.marks[k].x, a.marks[k].x);
                QCOMPARE(b.marks[k].radius, a.marks[k].radius);
                QCOMPARE(b.marks[k].color, a.marks[k].color);
            }
            QCOMPARE(b.request.size(), a.request.size());
            QVERIFY(b.request.back().hasImages());
            QCOMPARE(b.executed, a.executed);
        }
        // A damaged folder is an error that names what is wrong.
        fs::remove(run / "screens/step_002.png");
        auto broken = readAgentTrace(run.string());
        QVERIFY(!broken.ok());
        QVERIFY(broken.error().message.find("step_002.png") != std::string::npos);
        QVERIFY(!readAgentTrace((run / "screens").string()).ok());
    }

    void serverErrorStopsCleanly() {
        ScriptedServer server({});  // every request answers HTTP 500
        auto target = makeOpenAiAgentTarget(server.url(), "autoglm-phone-9b");
        QVERIFY(target.ok());
        auto source = makeReplayScreenSource(m_screens.string());
        QVERIFY(source.ok());
        AgentOptions o;
        o.task = "x";
        AgentSession session(**target, **source, o);
        session.run();
        QCOMPARE(session.steps().size(), size_t(1));
        QCOMPARE(session.stopReason(), AgentStopReason::TargetError);
        QVERIFY(session.stopDetail().find("HTTP 500") != std::string::npos);
        // The step says there was no answer, and its screenshot gets the error's badge.
        const AgentStep& s = session.steps()[0];
        QVERIFY(!s.parse.ok());
        QVERIFY(s.parse.error.find("no answer: HTTP 500") != std::string::npos);
        QCOMPARE(s.marks.size(), size_t(1));
        QCOMPARE(s.marks[0].shape, AgentMark::Shape::Badge);
        QVERIFY(!makeOpenAiAgentTarget("http://127.0.0.1:1/v1", "").ok());
        QVERIFY(!makeReplayScreenSource((fs::path(m_tmp.path().toStdString()) / "none").string()).ok());
    }

    // The step limit and a cancel end the run where they should; the trace says why.
    void stepLimitAndCancel() {
        const std::string tap = "<think>t</think><answer>do(action=\"Tap\", element=[1, 2])</answer>";
        ScriptedServer server({contentStream(tap, 10, 3), contentStream(tap, 10, 3), contentStream(tap, 10, 3)});
        auto target = makeOpenAiAgentTarget(server.url(), "");
        QVERIFY(target.ok());
        auto source = makeReplayScreenSource(m_screens.string());
        QVERIFY(source.ok());
        AgentOptions o;
        o.task = "x";
        o.maxSteps = 2;
        AgentSession limited(**target, **source, o);
        limited.run();
        QCOMPARE(limited.steps().size(), size_t(2));
        QCOMPARE(limited.stopReason(), AgentStopReason::MaxSteps);
        QVERIFY(!limited.step());  // over is over

        std::atomic<bool> cancel{false};
        auto source2 = makeReplayScreenSource(m_screens.string());
        QVERIFY(source2.ok());
        o.maxSteps = 20;
        o.cancel = &cancel;
        AgentSession cancelled(**target, **source2, o);
        QVERIFY(cancelled.step());
        cancel = true;
        QVERIFY(!cancelled.step());
        QCOMPARE(cancelled.steps().size(), size_t(1));
        QCOMPARE(cancelled.stopReason(), AgentStopReason::Cancelled);
    }

    void cliRefusesBadArguments() {
#ifndef WB_EXE
        QSKIP("the wb executable is not built");
#else
        const QString screens = QString::fromStdString(m_screens.string());
        const QList<QStringList> bad = {
            {"agent", "--task", "x", "--screens", screens, "--out", "/tmp/x"},  // no model, no URL
            {"agent", "-m", "a", "--url", "http://b/v1", "--task", "x", "--screens", screens, "--out", "/tmp/x"},
            {"agent", "--url", "http://127.0.0.1:1/v1", "--screens", screens, "--out", "/tmp/x"},  // no task
            {"agent", "--url", "http://127.0.0.1:1/v1", "--task", "x", "--screens", screens, "--out", "/tmp/x",
             "--max-steps", "zero"},
            {"agent", "--bogus"}};
        for (const QStringList& args : bad) {
            QProcess p;
            p.start(WB_EXE, args);
            QVERIFY(p.waitForFinished(30000));
            QVERIFY2(p.exitCode() == 2, qPrintable(args.join(' ')));
        }
        // A server that is not there: a clear error, exit code 1, no crash.
        QProcess p;
        p.start(WB_EXE, {"agent", "--url", "http://127.0.0.1:1/v1", "--task", "x", "--screens", screens, "--out",
                         QString::fromStdString((fs::path(m_tmp.path().toStdString()) / "run_none").string())});
        QVERIFY(p.waitForFinished(30000));
        QCOMPARE(p.exitCode(), 1);
        QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains("cannot be reached"));
#endif
    }

    // The tiny random GLM-4.1V through the engine: real requests, answers that are noise.
    void tinyGlmThroughEngine_data() {
        QTest::addColumn<bool>("goOn");
        QTest::newRow("stop") << false;
        QTest::newRow("continue") << true;
    }
    void tinyGlmThroughEngine() {
        QFETCH(bool, goOn);
        const std::string dir = (fs::path(m_tmp.path().toStdString()) / "tiny_glm4v").string();
        if (!fs::exists(dir)) QVERIFY(writeTinyGlmCheckpoint(dir).ok());
        EngineOptions eo;
        eo.modelPath = dir;
        eo.maxNumSeqs = 1;
        eo.kvCacheBytes = int64_t(64) << 20;
        auto engine = Engine::create(eo);
        QVERIFY2(engine.ok(), engine.ok() ? "" : engine.error().message.c_str());
        auto target = makeEngineAgentTarget(**engine);
        auto source = makeReplayScreenSource(m_screens.string());
        QVERIFY(source.ok());
        AgentOptions o;
        o.task = "open the settings";
        o.maxTokens = 24;
        o.onParseError = goOn ? AgentParseErrorPolicy::Continue : AgentParseErrorPolicy::Stop;
        AgentSession session(*target, **source, o);
        session.run();
        const auto& steps = session.steps();
        QCOMPARE(steps.size(), size_t(goOn ? 3 : 1));
        QCOMPARE(session.stopReason(), goOn ? AgentStopReason::ScreensExhausted : AgentStopReason::ParseError);
        for (const AgentStep& s : steps) {
            QVERIFY2(s.reply.error.empty(), s.reply.error.c_str());
            QVERIFY(!s.parse.ok());
            QVERIFY(!s.parse.error.empty());
            QVERIFY(s.reply.ttftMs > 0 && s.reply.totalMs >= s.reply.ttftMs);
            QVERIFY(s.reply.promptTokens > 100);  // the system prompt, the image's tokens, the task
            QVERIFY(s.reply.completionTokens > 0);
        }
        const fs::path run = fs::path(m_tmp.path().toStdString()) / (goOn ? "run_glm_go_on" : "run_glm_stop");
        AgentTraceWriter trace(run.string());
        QVERIFY(trace.write(session).ok());
        const json t = readJson(run / "trace.json");
        QVERIFY(t.is_object());
        QCOMPARE(t["steps"].size(), steps.size());
        QCOMPARE(t["steps"][0]["action"]["ok"].get<bool>(), false);
        QVERIFY(fs::exists(run / "annotated/step_001.png"));
    }

    // `wb agent -m` on the same model: the parse error stops the run with exit code 3, the trace written.
    void cliTinyGlm() {
#ifndef WB_EXE
        QSKIP("the wb executable is not built");
#else
        const std::string dir = (fs::path(m_tmp.path().toStdString()) / "tiny_glm4v").string();
        if (!fs::exists(dir)) QVERIFY(writeTinyGlmCheckpoint(dir).ok());
        const fs::path run = fs::path(m_tmp.path().toStdString()) / "run_cli_glm";
        QProcess p;
        p.start(WB_EXE, {"agent", "-m", QString::fromStdString(dir), "--task", "open the settings", "--screens",
                         QString::fromStdString(m_screens.string()), "--out", QString::fromStdString(run.string()),
                         "--max-tokens", "24"});
        QVERIFY(p.waitForFinished(120000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QVERIFY2(p.exitCode() == 3, qPrintable(err));
        QVERIFY2(err.contains("parse error"), qPrintable(err));
        const json t = readJson(run / "trace.json");
        QCOMPARE(t["status"].get<std::string>(), std::string("parse_error"));
        QCOMPARE(t["steps"].size(), size_t(1));
#endif
    }
};

QTEST_GUILESS_MAIN(TestAgentSession)
#include "tst_agent_session.moc"
