#include "fuzz_common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace wbfuzz {

namespace {

struct Scratch {
    fs::path dir;
    Scratch() {
        dir = fs::temp_directory_path() / ("wb-fuzz-" + std::to_string(::getpid()));
        std::error_code ec;
        fs::remove_all(dir, ec);
        fs::create_directories(dir, ec);
        if (ec) {
            std::fprintf(stderr, "fuzz: cannot make %s: %s\n", dir.c_str(), ec.message().c_str());
            std::abort();
        }
    }
    // libFuzzer leaves through exit() after a run (and after -runs=N, -max_total_time): the folder goes then.
    // After a crash it stays; tools/fuzz.sh points TMPDIR into the build folder and empties it.
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

}  // namespace

const fs::path& scratchDir() {
    static Scratch s;
    return s.dir;
}

fs::path freshFolder(const std::string& name) {
    const fs::path d = scratchDir() / name;
    std::error_code ec;
    fs::remove_all(d, ec);
    fs::create_directories(d, ec);
    return d;
}

void writeFile(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

void note(const std::string& what) {
    static const bool verbose = [] {
        const char* v = std::getenv("WB_FUZZ_VERBOSE");
        return v && *v && std::string(v) != "0";
    }();
    if (verbose) std::fprintf(stderr, "fuzz: %s\n", what.c_str());
}

std::string readFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace wbfuzz
