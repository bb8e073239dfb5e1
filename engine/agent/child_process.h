// Running a helper program (adb) with its output captured and a time limit, without a shell in between: the
// arguments go to execv as they are. POSIX only (fork/exec), Qt-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb::agent {

struct ChildOutput {
    int exitCode = -1;  // the program's exit status; -1 when a signal ended it
    std::vector<uint8_t> out;
    std::string err;
};

/// `name` as given when it has a slash, else the first executable of that name on PATH; empty when none.
std::string findExecutable(const std::string& name);

/// Runs `exe` (a path) with `args`, reads stdout and stderr to the end; past `timeoutMs` the child is killed and
/// the result is an error. A failure to start is an error too.
Result<ChildOutput> runChild(const std::string& exe, const std::vector<std::string>& args, int timeoutMs);

}  // namespace wb::agent
