#include "backend/device.h"

#include <algorithm>

namespace wb {

const char* deviceKindName(DeviceKind kind) {
    switch (kind) {
        case DeviceKind::Cpu: return "cpu";
        case DeviceKind::Cuda: return "cuda";
    }
    return "?";
}

Result<DeviceKind> parseDeviceKind(const std::string& s) {
    std::string l = s;
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (l == "cpu") return DeviceKind::Cpu;
    if (l == "cuda" || l == "gpu") return DeviceKind::Cuda;
    return makeError("unknown device \"" + s + "\" (cpu, cuda)");
}

}  // namespace wb
