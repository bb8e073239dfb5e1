#include "backend/backend_registry.h"

#include "core/host_memory.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "backend/backend_api.h"
#include "backend/cpu/cpu_device.h"
#include "backend/cpu/cpu_ops.h"
#include "core/thread_pool.h"
#include "parallel/in_process_communicator.h"

#ifndef WB_BACKEND_BUILD_DIR
#define WB_BACKEND_BUILD_DIR ""
#endif

namespace wb {

namespace {

struct CudaModule {
    const WbBackendApi* api = nullptr;
    std::string note;
};

std::string executableDir() {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : p.parent_path().string();
}

// Tries WB_BACKEND_PATH (a file or folder), the executable's folder and ../lib/wb beside it, the build folder,
// then the dynamic linker's own search path.
const CudaModule& cudaModule() {
    static CudaModule m;
    static std::once_flag once;
    std::call_once(once, [] {
        const char* file = "libwb_cuda.so";
        std::vector<std::string> candidates;
        if (const char* env = std::getenv("WB_BACKEND_PATH"); env && *env) {
            std::error_code ec;
            candidates.push_back(std::filesystem::is_directory(env, ec) ? std::string(env) + "/" + file : env);
        }
        const std::string exe = executableDir();
        if (!exe.empty()) {
            candidates.push_back(exe + "/" + file);
            candidates.push_back(exe + "/../lib/wb/" + file);
        }
        if (*WB_BACKEND_BUILD_DIR) candidates.push_back(std::string(WB_BACKEND_BUILD_DIR) + "/" + file);
        candidates.push_back(file);
        std::string tried, lastError;
        for (const std::string& c : candidates) {
            std::error_code ec;
            if (c.find('/') != std::string::npos && !std::filesystem::exists(c, ec)) {
                tried += (tried.empty() ? "" : ", ") + c;
                continue;
            }
            void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!h) {
                // Present but unloadable (libcudart or libnccl missing): say so rather than "not found".
                lastError = dlerror();
                tried += (tried.empty() ? "" : ", ") + c;
                continue;
            }
            auto get = reinterpret_cast<WbBackendGetApiFn>(dlsym(h, WB_BACKEND_ENTRY_POINT));
            const WbBackendApi* api = get ? get(WB_BACKEND_API_VERSION) : nullptr;
            if (!api || api->apiVersion != WB_BACKEND_API_VERSION || api->structSize != sizeof(WbBackendApi)) {
                m.note = "cuda: " + c + " has backend API version " + (api ? std::to_string(api->apiVersion) : "?") +
                         ", this build needs " + std::to_string(WB_BACKEND_API_VERSION) + "; ignored";
                dlclose(h);
                return;
            }
            m.api = api;
            m.note = "cuda: module " + c;
            return;  // never closed: devices made by it live as long as the process may hold them
        }
        m.note = "cuda: no module (" + std::string(file) + " not loaded; tried " + tried + ")" +
                 (lastError.empty() ? "" : ": " + lastError);
    });
    return m;
}

}  // namespace

DeviceReport probeDevices() {
    DeviceReport r;
    CpuDevice probe(1);
    DeviceInfo cpuInfo;
    cpuInfo.kind = DeviceKind::Cpu;
    cpuInfo.name = "cpu (" + std::to_string(ThreadPool::hardwareThreads()) + " threads, " +
                   cpu::isaName(cpu::detectedIsa()) + ")";
    cpuInfo.totalBytes = probe.memory().totalBytes;
    cpuInfo.freeBytes = probe.memory().freeBytes;
    r.devices.push_back(cpuInfo);
    const CudaModule& cuda = cudaModule();
    r.notes.push_back(cuda.note);
    if (!cuda.api) return r;
    char err[512] = {0};
    const int n = cuda.api->deviceCount(err, sizeof err);
    if (n < 0) {
        r.notes.push_back(std::string("cuda: no device (") + err + ")");
        return r;
    }
    if (n == 0) r.notes.push_back("cuda: the driver reports no device");
    for (int i = 0; i < n; ++i) {
        DeviceInfo d;
        d.kind = DeviceKind::Cuda;
        d.index = i;
        char name[256] = {0};
        if (cuda.api->deviceInfo(i, name, sizeof name, &d.totalBytes, &d.freeBytes) != 0) continue;
        d.name = name;
        r.devices.push_back(d);
    }
    return r;
}

namespace {

DeviceWrapper& deviceWrapper() {
    static DeviceWrapper w;
    return w;
}

}  // namespace

void setDeviceWrapperForTesting(DeviceWrapper wrap) { deviceWrapper() = std::move(wrap); }

static Result<std::vector<std::unique_ptr<Device>>> createDevicesUnwrapped(DeviceKind kind, int count,
                                                                             int cpuThreadsEach) {
    std::vector<std::unique_ptr<Device>> out;
    if (count < 1) return makeError("device count must be at least 1");
    if (kind == DeviceKind::Cpu) {
        const int each = cpuThreadsEach > 0 ? cpuThreadsEach : std::max(1, ThreadPool::hardwareThreads() / count);
        for (int i = 0; i < count; ++i) out.push_back(std::make_unique<CpuDevice>(each, count > 1 ? i : -1));
        return out;
    }
    const CudaModule& cuda = cudaModule();
    if (!cuda.api) return makeError(cuda.note);
    char err[512] = {0};
    const int n = cuda.api->deviceCount(err, sizeof err);
    if (n < 0) return makeError(std::string("cuda: no device: ") + err);
    std::string skipped;
    for (int i = 0; i < n && int(out.size()) < count; ++i) {
        err[0] = 0;
        if (!cuda.api->deviceSupported(i, err, sizeof err)) {
            skipped += std::string(skipped.empty() ? "" : "; ") + err;
            continue;
        }
        void* d = cuda.api->createDevice(i, err, sizeof err);
        if (!d) return makeError(std::string("cuda:") + std::to_string(i) + ": " + err);
        out.emplace_back(static_cast<Device*>(d));
    }
    if (int(out.size()) < count)
        return makeError("cuda: " + std::to_string(count) + " devices requested, " + std::to_string(n) +
                         " present, " + std::to_string(out.size()) + " usable" +
                         (skipped.empty() ? std::string() : " (" + skipped + ")"));
    return out;
}

Result<std::vector<std::unique_ptr<Device>>> createDevices(DeviceKind kind, int count, int cpuThreadsEach) {
    auto out = createDevicesUnwrapped(kind, count, cpuThreadsEach);
    if (!out || !deviceWrapper()) return out;
    for (size_t r = 0; r < out->size(); ++r) (*out)[r] = deviceWrapper()(int(r), std::move((*out)[r]));
    return out;
}

Result<void> resetDevices(DeviceKind kind, const std::vector<int>& ordinals) {
    if (kind == DeviceKind::Cpu) return {};
    const CudaModule& cuda = cudaModule();
    if (!cuda.api) return makeError(cuda.note);
    std::string errors;
    for (int i : ordinals) {
        if (i < 0) continue;
        char err[512] = {0};
        if (cuda.api->resetDevice(i, err, sizeof err) != 0) errors += std::string(errors.empty() ? "" : "; ") + err;
    }
    if (!errors.empty()) return makeError(errors);
    return {};
}

Result<std::vector<std::unique_ptr<Communicator>>> createCommunicators(DeviceKind kind,
                                                                        const std::vector<Device*>& devices) {
    if (kind == DeviceKind::Cpu) return InProcessCommunicator::createGroup(int(devices.size()));
    const CudaModule& cuda = cudaModule();
    if (!cuda.api) return makeError(cuda.note);
    std::vector<void*> raw(devices.begin(), devices.end()), comms(devices.size(), nullptr);
    char err[512] = {0};
    if (cuda.api->createCommunicators(int(devices.size()), raw.data(), comms.data(), err, sizeof err) != 0)
        return makeError(std::string("nccl: ") + err);
    std::vector<std::unique_ptr<Communicator>> out;
    for (void* c : comms) out.emplace_back(static_cast<Communicator*>(c));
    return out;
}

const char* cpuIsaName() { return cpu::isaName(cpu::detectedIsa()); }

int64_t hostAvailableMemoryBytes() {
    const int64_t b = hostMemInfoBytes("MemAvailable:");
    return b > 0 ? b : 0;
}

}  // namespace wb
