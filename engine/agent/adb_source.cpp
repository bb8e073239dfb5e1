// The live phone as a screen source: Android's adb takes the screenshots (`exec-out screencap -p`) and, once the
// user arms execution, carries out the actions with `shell input …` and `shell monkey` (the commands of the
// model's own agent, Open-AutoGLM, except typing: `input text` instead of its ADB Keyboard broadcast, so nothing
// needs installing on the phone). Every command runs without a local shell; the device's shell reads the
// `input text` argument, which is quoted for it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "agent/child_process.h"
#include "api/agent.h"
#include "media/image.h"

namespace wb {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

std::string trimmed(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
}

/// One adb command (`adb [-s SERIAL] ARGS`); a failure to run it or a non-zero exit is an error quoting adb.
Result<agent::ChildOutput> runAdb(const std::string& exe, const std::string& serial,
                                  const std::vector<std::string>& args, int timeoutMs) {
    std::vector<std::string> full;
    if (!serial.empty()) full = {"-s", serial};
    full.insert(full.end(), args.begin(), args.end());
    auto r = agent::runChild(exe, full, timeoutMs);
    if (!r) return makeError("adb " + joined(full) + ": " + r.error().message);
    if (r->exitCode != 0) {
        std::string why = trimmed(r->err);
        if (why.empty()) why = trimmed(std::string(r->out.begin(), r->out.end()));
        return makeError("adb " + joined(full) + " failed (exit status " + std::to_string(r->exitCode) + ")" +
                         (why.empty() ? std::string() : ": " + why));
    }
    return r;
}

class AdbScreenSource : public AgentScreenSource {
public:
    AdbScreenSource(AgentAdbOptions o, std::string exe, std::string device, int width, int height)
        : m_o(std::move(o)), m_exe(std::move(exe)), m_device(std::move(device)), m_width(width), m_height(height) {
        if (m_o.apps.empty()) m_o.apps = defaultAgentApps();
        for (const auto& [name, pkg] : m_o.apps) m_apps[lower(trimmed(name))] = pkg;
    }

    std::string describe() const override {
        std::string s = "Android phone " + m_device + " through adb";
        if (m_width > 0) s += " (" + std::to_string(m_width) + " x " + std::to_string(m_height) + ")";
        return s;
    }

    bool executes() const override { return m_o.execute && m_o.execute->load(); }

    Result<AgentScreen> capture() override {
        auto r = adb({"exec-out", "screencap", "-p"});
        if (!r) return r.error();
        const std::vector<uint8_t>& b = r->out;
        static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (b.size() < 8 || !std::equal(kPng, kPng + 8, b.begin())) {
            std::string head;
            for (size_t i = 0; i < std::min<size_t>(b.size(), 40); ++i)
                head += (b[i] >= 32 && b[i] < 127) ? char(b[i]) : '.';
            std::string msg = "the screenshot from adb is not a PNG (" + std::to_string(b.size()) + " bytes";
            if (!b.empty()) msg += ", starting \"" + head + "\"";
            msg += ")";
            if (!trimmed(r->err).empty()) msg += "; adb said: " + trimmed(r->err);
            return makeError(msg + ". Is the phone unlocked?");
        }
        auto bytes = std::make_shared<std::vector<uint8_t>>(std::move(r->out));
        auto img = decodeImage(*bytes, "adb screencap");
        if (!img) return img.error();
        AgentScreen s;
        s.width = img->width;
        s.height = img->height;
        s.name = "screencap " + std::to_string(++m_shots);
        s.bytes = std::move(bytes);
        s.currentApp = currentApp();
        return s;
    }

    // The app in front, for the screen info the model gets (as the reference agent sends it): the package of the
    // focused window in `dumpsys window`, under its name in the app table when it has one. Empty when unknown;
    // a failure here does not stop the run.
    std::string currentApp() const {
        auto r = adb({"shell", "dumpsys", "window"});
        if (!r) return {};
        const std::string text(r->out.begin(), r->out.end());
        for (const char* key : {"mCurrentFocus=", "mFocusedApp="}) {
            const size_t at = text.find(key);
            if (at == std::string::npos) continue;
            const size_t eol = std::min(text.find('\n', at), text.size());
            const std::string line = text.substr(at, eol - at);
            const size_t slash = line.find('/');
            if (slash == std::string::npos) continue;
            const size_t space = line.rfind(' ', slash);
            const std::string pkg = line.substr(space == std::string::npos ? 0 : space + 1,
                                                slash - (space == std::string::npos ? 0 : space + 1));
            if (pkg.empty()) continue;
            for (const auto& [name, p] : m_o.apps)
                if (p == pkg) return name;
            return pkg;
        }
        return {};
    }

    Result<std::string> perform(const AgentAction& a, const AgentScreen& screen) override {
        // What would be sent, as adb command lines (without the adb and -s part), plus Wait's pause.
        std::vector<std::vector<std::string>> cmds;
        double waitSeconds = 0;
        auto pt = [&](AgentPoint p) {
            const AgentPixel px = agentPointToPixel(p, screen.width, screen.height);
            return std::pair{std::to_string(px.x), std::to_string(px.y)};
        };
        switch (a.kind) {
            case AgentActionKind::Tap:
            case AgentActionKind::DoubleTap:
            case AgentActionKind::LongPress: {
                if (!a.point) return makeError(std::string(agentActionName(a.kind)) + " without element=[x,y]");
                auto [x, y] = pt(*a.point);
                if (a.kind == AgentActionKind::LongPress)
                    cmds.push_back({"shell", "input", "swipe", x, y, x, y, "3000"});
                else
                    cmds.push_back({"shell", "input", "tap", x, y});
                if (a.kind == AgentActionKind::DoubleTap) cmds.push_back(cmds.back());
                break;
            }
            case AgentActionKind::Swipe: {
                if (!a.start || !a.end) return makeError("Swipe without start=[x,y] and end=[x,y]");
                auto [x1, y1] = pt(*a.start);
                auto [x2, y2] = pt(*a.end);
                // The reference's duration: the squared pixel distance / 1000, within 1-2 s.
                const double dx = std::stod(x2) - std::stod(x1), dy = std::stod(y2) - std::stod(y1);
                const int ms = std::clamp(int((dx * dx + dy * dy) / 1000), 1000, 2000);
                cmds.push_back({"shell", "input", "swipe", x1, y1, x2, y2, std::to_string(ms)});
                break;
            }
            case AgentActionKind::Back:
                cmds.push_back({"shell", "input", "keyevent", "4"});
                break;
            case AgentActionKind::Home:
                cmds.push_back({"shell", "input", "keyevent", "3"});
                break;
            case AgentActionKind::Type:
            case AgentActionKind::TypeName: {
                // Line by line; a newline is the Enter key.
                size_t start = 0;
                while (true) {
                    const size_t nl = a.text.find('\n', start);
                    const std::string line = a.text.substr(start, nl == std::string::npos ? nl : nl - start);
                    if (!line.empty()) {
                        auto arg = adbInputTextArgument(line);
                        if (!arg) return arg.error();
                        cmds.push_back({"shell", "input", "text", *arg});
                    }
                    if (nl == std::string::npos) break;
                    cmds.push_back({"shell", "input", "keyevent", "66"});
                    start = nl + 1;
                }
                break;
            }
            case AgentActionKind::Launch: {
                const auto it = m_apps.find(lower(trimmed(a.app)));
                if (it == m_apps.end())
                    return makeError("no package known for the app \"" + a.app +
                                     "\": add it to the app table (name = package)");
                cmds.push_back({"shell", "monkey", "-p", it->second, "-c", "android.intent.category.LAUNCHER", "1"});
                break;
            }
            case AgentActionKind::Wait:
                waitSeconds = std::clamp(a.durationSeconds.value_or(1.0), 0.0, 60.0);
                break;
            default:
                return std::string("nothing to send (") + agentActionName(a.kind) + ")";
        }
        std::string sent;
        for (const auto& c : cmds) sent += (sent.empty() ? "" : "; ") + std::string("adb ") + joined(c);
        if (!executes()) {
            if (cmds.empty()) return std::string("not executed (execution off)");
            return "not executed (execution off): " + sent;
        }
        for (size_t i = 0; i < cmds.size(); ++i) {
            if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a double tap's pause
            auto r = adb(cmds[i]);
            if (!r) return r.error();
            // `input` and `monkey` report some failures on stdout with exit status 0.
            const std::string out = trimmed(std::string(r->out.begin(), r->out.end()));
            if (out.find("Exception") != std::string::npos || out.find("Error") != std::string::npos ||
                out.find("No activities found") != std::string::npos)
                return makeError("adb " + joined(cmds[i]) + ": " + out);
        }
        if (waitSeconds > 0) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(waitSeconds);
            while (std::chrono::steady_clock::now() < until && !(m_o.cancel && m_o.cancel->load()))
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return "waited " + std::to_string(int(std::lround(waitSeconds * 1000))) + " ms";
        }
        return "sent: " + sent;
    }

private:
    Result<agent::ChildOutput> adb(const std::vector<std::string>& args) const {
        return runAdb(m_exe, m_o.serial, args, m_o.commandTimeoutMs);
    }

    AgentAdbOptions m_o;
    std::string m_exe, m_device;
    int m_width = 0, m_height = 0;
    int m_shots = 0;
    std::map<std::string, std::string> m_apps;
};

}  // namespace

const std::map<std::string, std::string>& defaultAgentApps() {
    // Apps the model's own agent knows by name (its app table), and Android's and Google's own.
    static const std::map<std::string, std::string> apps = {
        {"Settings", "com.android.settings"},
        {"设置", "com.android.settings"},
        {"Chrome", "com.android.chrome"},
        {"Gmail", "com.google.android.gm"},
        {"Google Maps", "com.google.android.apps.maps"},
        {"YouTube", "com.google.android.youtube"},
        {"Play Store", "com.android.vending"},
        {"Camera", "com.android.camera2"},
        {"Contacts", "com.android.contacts"},
        {"Phone", "com.android.dialer"},
        {"Messages", "com.google.android.apps.messaging"},
        {"Calendar", "com.google.android.calendar"},
        {"Clock", "com.google.android.deskclock"},
        {"Files", "com.google.android.documentsui"},
        {"WeChat", "com.tencent.mm"},
        {"微信", "com.tencent.mm"},
        {"QQ", "com.tencent.mobileqq"},
        {"Alipay", "com.eg.android.AlipayGphone"},
        {"支付宝", "com.eg.android.AlipayGphone"},
        {"Taobao", "com.taobao.taobao"},
        {"淘宝", "com.taobao.taobao"},
        {"JD", "com.jingdong.app.mall"},
        {"京东", "com.jingdong.app.mall"},
        {"Meituan", "com.sankuai.meituan"},
        {"美团", "com.sankuai.meituan"},
        {"Xiaohongshu", "com.xingin.xhs"},
        {"小红书", "com.xingin.xhs"},
        {"Douyin", "com.ss.android.ugc.aweme"},
        {"抖音", "com.ss.android.ugc.aweme"},
        {"bilibili", "tv.danmaku.bili"},
        {"哔哩哔哩", "tv.danmaku.bili"},
        {"Amap", "com.autonavi.minimap"},
        {"高德地图", "com.autonavi.minimap"},
        {"Baidu Maps", "com.baidu.BaiduMap"},
        {"百度地图", "com.baidu.BaiduMap"},
        {"Weibo", "com.sina.weibo"},
        {"微博", "com.sina.weibo"},
        {"Zhihu", "com.zhihu.android"},
        {"知乎", "com.zhihu.android"},
        {"Dianping", "com.dianping.v1"},
        {"大众点评", "com.dianping.v1"},
        {"Ctrip", "ctrip.android.view"},
        {"携程", "ctrip.android.view"},
        {"12306", "com.MobileTicket"},
    };
    return apps;
}

Result<std::string> adbInputTextArgument(const std::string& line) {
    std::string s = "'";
    for (unsigned char c : line) {
        if (c >= 0x80 || (c < 0x20 && c != '\t'))
            return makeError("`adb shell input text` types ASCII only: \"" + line +
                             "\" cannot be typed (an input method such as ADB Keyboard is needed)");
        if (c == ' ' || c == '\t')
            s += "%s";  // `input text` reads %s as a space; a real space would split the argument
        else if (c == '\'')
            s += "'\\''";
        else
            s += char(c);
    }
    return s + "'";
}

Result<std::unique_ptr<AgentScreenSource>> makeAdbScreenSource(AgentAdbOptions o) {
    const std::string exe = agent::findExecutable(o.adb);
    if (exe.empty())
        return makeError(o.adb.find('/') != std::string::npos
                             ? o.adb + " is not an executable"
                             : "adb is not on PATH: install Android's platform tools (Debian: apt install adb)");
    auto list = runAdb(exe, {}, {"devices"}, o.commandTimeoutMs);
    if (!list) return list.error();
    // "List of devices attached", then one "SERIAL<TAB>STATE" line each (device, unauthorized, offline...).
    std::vector<std::pair<std::string, std::string>> devices;
    const std::string text(list->out.begin(), list->out.end());
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        const std::string line = trimmed(text.substr(start, nl - start));
        start = nl + 1;
        const size_t tab = line.find('\t');
        if (tab != std::string::npos) devices.emplace_back(trimmed(line.substr(0, tab)), trimmed(line.substr(tab + 1)));
    }
    std::string names;
    for (const auto& d : devices) names += (names.empty() ? "" : ", ") + d.first + " (" + d.second + ")";
    if (devices.empty())
        return makeError(
            "no Android device attached (adb devices lists none): connect the phone by USB with USB "
            "debugging on, or `adb connect HOST:PORT`");
    const std::pair<std::string, std::string>* dev = nullptr;
    if (!o.serial.empty()) {
        for (const auto& d : devices)
            if (d.first == o.serial) dev = &d;
        if (!dev) return makeError("no device " + o.serial + " attached (adb devices lists " + names + ")");
    } else if (devices.size() > 1) {
        return makeError("several devices attached (" + names + "): choose one by its serial");
    } else {
        dev = &devices.front();
    }
    if (dev->second == "unauthorized")
        return makeError("the phone " + dev->first +
                         " has not authorized this computer: unlock it and accept the "
                         "USB debugging prompt");
    if (dev->second != "device") return makeError("the phone " + dev->first + " is " + dev->second + ": reconnect it");
    // "Physical size: 1080x2400", maybe followed by "Override size: …", which is what the screen shows.
    int w = 0, h = 0;
    auto size = runAdb(exe, o.serial, {"shell", "wm", "size"}, o.commandTimeoutMs);
    if (!size) return size.error();
    const std::string sz(size->out.begin(), size->out.end());
    for (const char* key : {"Physical size:", "Override size:"}) {
        const size_t at = sz.find(key);
        if (at == std::string::npos) continue;
        int a = 0, b = 0;
        if (std::sscanf(sz.c_str() + at + std::strlen(key), " %dx%d", &a, &b) == 2) {
            w = a;
            h = b;
        }
    }
    std::string device = dev->first;
    return std::unique_ptr<AgentScreenSource>(
        std::make_unique<AdbScreenSource>(std::move(o), exe, std::move(device), w, h));
}

}  // namespace wb
