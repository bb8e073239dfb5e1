// Human-readable quantities for logs and command-line output.
#pragma once

#include <cstdio>
#include <string>

namespace wb {

/// "2.05 GiB": binary units, two decimals.
inline std::string humanBytes(double numBytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (numBytes >= 1024 && u < 4) {
        numBytes /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f %s", numBytes, units[u]);
    return buf;
}

}  // namespace wb
