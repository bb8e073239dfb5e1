// The replay screen source: a folder of screenshots, one per step, in name order; each next screenshot stands
// for the phone's answer to the previous action (an offline demo). Actions are drawn, never sent.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "api/agent.h"
#include "media/image.h"

namespace wb {

namespace {

class ReplayScreenSource : public AgentScreenSource {
public:
    ReplayScreenSource(std::string dir, std::vector<std::filesystem::path> files)
        : m_dir(std::move(dir)), m_files(std::move(files)) {}
    std::string describe() const override {
        return "replay of " + m_dir + " (" + std::to_string(m_files.size()) + " screenshots)";
    }
    bool hasMore() const override { return m_next < m_files.size(); }
    Result<AgentScreen> capture() override {
        if (m_next >= m_files.size()) return makeError("no screenshot left in " + m_dir);
        const std::filesystem::path& f = m_files[m_next++];
        std::ifstream in(f, std::ios::binary);
        if (!in) return makeError("cannot read " + f.string());
        auto bytes = std::make_shared<std::vector<uint8_t>>(std::istreambuf_iterator<char>(in),
                                                            std::istreambuf_iterator<char>());
        auto img = decodeImage(*bytes, f.string());  // refuses what is not a PNG/JPEG, and gives the size
        if (!img) return img.error();
        AgentScreen s;
        s.width = img->width;
        s.height = img->height;
        s.name = f.filename().string();
        s.bytes = std::move(bytes);
        return s;
    }
    Result<std::string> perform(const AgentAction&, const AgentScreen&) override {
        return std::string("not executed (replay)");
    }

private:
    std::string m_dir;
    std::vector<std::filesystem::path> m_files;
    size_t m_next = 0;
};

}  // namespace

Result<std::unique_ptr<AgentScreenSource>> makeReplayScreenSource(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return makeError("not a folder of screenshots: " + dir);
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (!e.is_regular_file()) continue;
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
        if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(e.path());
    }
    if (ec) return makeError("cannot list " + dir + ": " + ec.message());
    if (files.empty()) return makeError("no .png/.jpg screenshots in " + dir);
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.filename().string() < b.filename().string(); });
    return std::unique_ptr<AgentScreenSource>(std::make_unique<ReplayScreenSource>(dir, std::move(files)));
}

}  // namespace wb
