/* The C table through which the engine reaches a backend module loaded at run time (libwb_cuda.so), so that one
 * build of `wb` starts on a machine without an NVIDIA driver. The module exports wbBackendGetApi(version); the
 * engine refuses a table whose apiVersion differs from its own WB_BACKEND_API_VERSION.
 *
 * The devices and communicators it creates are C++ objects (wb::Device, wb::Communicator) handed across as void*:
 * the module must be built from the same tree with the same compiler, which the version number stands for. They
 * are deleted through their virtual destructors; the module stays loaded for the life of the process. */
#ifndef WB_BACKEND_API_H
#define WB_BACKEND_API_H

#include <stddef.h>
#include <stdint.h>

#define WB_BACKEND_API_VERSION 2
#define WB_BACKEND_ENTRY_POINT "wbBackendGetApi"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct WbBackendApi {
    uint32_t apiVersion; /* WB_BACKEND_API_VERSION of the module */
    uint32_t structSize; /* sizeof(WbBackendApi) as the module knows it */
    const char* name;    /* "cuda" */
    /* Devices present, or -1 with a message in err (no driver, driver too old, ...). */
    int (*deviceCount)(char* err, size_t errLen);
    /* Name and memory of one device; 0 on success. Makes no context on the device: freeBytes is -1 unless the
     * process already has one there. */
    int (*deviceInfo)(int index, char* name, size_t nameLen, int64_t* totalBytes, int64_t* freeBytes);
    /* A new wb::Device* for device `index`, or NULL with a message in err. */
    void* (*createDevice)(int index, char* err, size_t errLen);
    /* worldSize wb::Communicator* (one per rank) over the devices made by createDevice, written to out; 0 on
     * success. */
    int (*createCommunicators)(int worldSize, void* const* devices, void** out, char* err, size_t errLen);
    /* Version 2. 1 when this module can run on device `index` (its architecture was built), else 0 with the
     * reason in err. Makes no context. */
    int (*deviceSupported)(int index, char* err, size_t errLen);
    /* Version 2. Destroys the process's context on device `index` (cudaDeviceReset), after a sticky fault, once
     * every device object, buffer and communicator on it has been deleted; the next createDevice makes a fresh
     * one. 0 on success. */
    int (*resetDevice)(int index, char* err, size_t errLen);
} WbBackendApi;

typedef const WbBackendApi* (*WbBackendGetApiFn)(uint32_t engineApiVersion);

#ifdef __cplusplus
}
#endif

#endif
