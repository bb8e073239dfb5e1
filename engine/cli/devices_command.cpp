// `wb devices`: what this process can run on. The CPU always; CUDA GPUs when the CUDA module loads and the driver
// answers, with the reason when it does not (so a machine without NVIDIA says so and carries on).
#include <cstdio>
#include <cstring>

#include "api/devices.h"

namespace wb::cli {

int runDevicesCommand(int argc, char** argv) {
    const bool json = argc > 2 && std::strcmp(argv[2], "--json") == 0;
    const DeviceReport r = probeDevices();
    if (json) {
        std::printf("{\"devices\": [");
        for (size_t i = 0; i < r.devices.size(); ++i) {
            const DeviceInfo& d = r.devices[i];
            std::printf("%s{\"kind\": \"%s\", \"index\": %d, \"name\": \"%s\", \"total_bytes\": %lld, \"free_bytes\": %lld}",
                        i ? ", " : "", deviceKindName(d.kind), d.index, d.name.c_str(), (long long)d.totalBytes,
                        (long long)d.freeBytes);
        }
        std::printf("], \"notes\": [");
        for (size_t i = 0; i < r.notes.size(); ++i) std::printf("%s\"%s\"", i ? ", " : "", r.notes[i].c_str());
        std::printf("]}\n");
        return 0;
    }
    for (const DeviceInfo& d : r.devices) {
        if (d.freeBytes < 0)  // a GPU this process holds no context on: probing does not make one to ask
            std::printf("%-5s %d  %-48s %8.1f GiB total\n", deviceKindName(d.kind), d.index, d.name.c_str(),
                        double(d.totalBytes) / (1 << 30));
        else
            std::printf("%-5s %d  %-48s %8.1f GiB total, %8.1f GiB free\n", deviceKindName(d.kind), d.index,
                        d.name.c_str(), double(d.totalBytes) / (1 << 30), double(d.freeBytes) / (1 << 30));
    }
    for (const std::string& n : r.notes) std::printf("note: %s\n", n.c_str());
    return 0;
}

}  // namespace wb::cli
