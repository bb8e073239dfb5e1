#include "core/host_memory.h"

#include <fstream>
#include <string>

namespace wb {

int64_t hostMemInfoBytes(const char* field) {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    int64_t value = 0;
    while (in >> key >> value >> unit)
        if (key == field) return value * 1024;
    return 0;
}

}  // namespace wb
