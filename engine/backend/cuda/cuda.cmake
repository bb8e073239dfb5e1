# The CUDA backend: a shared module (libwb_cuda.so) that the engine dlopens at run time through the versioned C
# table in backend/backend_api.h, so that `wb` itself never links libcudart and starts on machines without a driver.
#
# WB_CUDA: AUTO (build it when a CUDA compiler is found), ON (required), OFF.
set(WB_CUDA AUTO CACHE STRING "Build the CUDA backend module: AUTO, ON or OFF")
set_property(CACHE WB_CUDA PROPERTY STRINGS AUTO ON OFF)

set(WB_CUDA_ENABLED OFF)
if(NOT WB_CUDA STREQUAL "OFF")
    # Debian's CUDA lives in /usr/local/cuda, usually not on PATH.
    if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
        set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
        # RTX 4090 (Ada, sm_89) and H100/H200 (Hopper, sm_90); two targets keep CI builds short.
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
            set(CMAKE_CUDA_ARCHITECTURES "89;90" CACHE STRING "CUDA architectures")
        endif()
        enable_language(CUDA)
        find_package(CUDAToolkit REQUIRED)
        # NCCL (and on machines whose toolkit lacks it, cuBLAS) may live in pip's nvidia-* packages: point
        # WB_NCCL_LIBRARY / WB_NCCL_INCLUDE (and WB_CUBLAS_LIBRARY / WB_CUBLAS_INCLUDE) at them
        # (tools/gpu-check.sh finds them).
        find_library(WB_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
        find_path(WB_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
        if(TARGET CUDA::cublas)
            set(WB_CUBLAS_TARGET CUDA::cublas)
        else()
            find_library(WB_CUBLAS_LIBRARY NAMES cublas libcublas.so.13 libcublas.so.12)
            find_path(WB_CUBLAS_INCLUDE cublas_v2.h)
            if(WB_CUBLAS_LIBRARY AND WB_CUBLAS_INCLUDE)
                add_library(wb_cublas_found INTERFACE)
                target_link_libraries(wb_cublas_found INTERFACE ${WB_CUBLAS_LIBRARY})
                target_include_directories(wb_cublas_found INTERFACE ${WB_CUBLAS_INCLUDE})
                set(WB_CUBLAS_TARGET wb_cublas_found)
            endif()
        endif()
        if(NOT WB_CUBLAS_TARGET)
            set(_why "cuBLAS not found (set WB_CUBLAS_LIBRARY and WB_CUBLAS_INCLUDE)")
        elseif(WB_NCCL_LIBRARY AND WB_NCCL_INCLUDE)
            set(WB_CUDA_ENABLED ON)
        else()
            set(_why "NCCL (libnccl, nccl.h) not found (set WB_NCCL_LIBRARY and WB_NCCL_INCLUDE)")
        endif()
    else()
        set(_why "no CUDA compiler found (set CMAKE_CUDA_COMPILER or put nvcc on PATH)")
    endif()
    if(NOT WB_CUDA_ENABLED)
        if(WB_CUDA STREQUAL "ON")
            message(FATAL_ERROR "WB_CUDA=ON but ${_why}")
        endif()
        message(STATUS "CUDA backend: off (${_why}); wb runs on the CPU. Set WB_CUDA=ON to require it.")
    endif()
endif()

if(WB_CUDA_ENABLED)
    message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
    file(GLOB _cuda_srcs CONFIGURE_DEPENDS "${CMAKE_CURRENT_LIST_DIR}/*.cu" "${CMAKE_CURRENT_LIST_DIR}/*.cpp")
    add_library(wb_cuda MODULE ${_cuda_srcs})
    target_include_directories(wb_cuda PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}" ${WB_NCCL_INCLUDE})
    # wb_cpu for the host-side dequantizers used at upload; static and PIC, so the module carries its own copy.
    target_link_libraries(wb_cuda PRIVATE wb_cpu wb_core CUDA::cudart ${WB_CUBLAS_TARGET} ${WB_NCCL_LIBRARY})
    set_target_properties(wb_cuda PROPERTIES
        CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
        CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden
        # Beside wb, where the registry looks first.
        LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/engine")
    target_compile_options(wb_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
    # The oldest architecture built: a GPU below it is refused with a message naming both (cuda_device.cpp), rather
    # than failing at its first kernel launch. "native", "all" and the like leave the check off.
    set(_min_arch 0)
    foreach(_arch ${CMAKE_CUDA_ARCHITECTURES})
        if(_arch MATCHES "^([0-9]+)")
            if(_min_arch EQUAL 0 OR CMAKE_MATCH_1 LESS _min_arch)
                set(_min_arch ${CMAKE_MATCH_1})
            endif()
        endif()
    endforeach()
    target_compile_definitions(wb_cuda PRIVATE WB_CUDA_MIN_ARCH=${_min_arch})
    # The installed module finds libnccl and libcublas where configure found them (pip's nvidia-* packages
    # included), not only in the toolkit's folder; the build tree gets these from CMake's build RPATH.
    set(_rpath "${CUDAToolkit_LIBRARY_DIR}")
    foreach(_lib ${WB_NCCL_LIBRARY} ${WB_CUBLAS_LIBRARY})
        if(_lib)
            get_filename_component(_dir "${_lib}" DIRECTORY)
            list(APPEND _rpath "${_dir}")
        endif()
    endforeach()
    list(REMOVE_DUPLICATES _rpath)
    set_target_properties(wb_cuda PROPERTIES INSTALL_RPATH "${_rpath}")
    install(TARGETS wb_cuda LIBRARY DESTINATION lib/wb)
endif()
target_compile_definitions(wb_backend PRIVATE WB_BACKEND_BUILD_DIR="${CMAKE_BINARY_DIR}/engine")
