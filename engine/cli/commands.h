// The wb commands, one file each (`generate_command.cpp`, ...); main.cpp holds the table that names them.
#pragma once

namespace wb::cli {

struct Args;

int cmdGenerate(const Args& a);      // generate_command.cpp
int cmdChat(const Args& a);          // chat_command.cpp
int cmdAsk(const Args& a);           // ask_command.cpp
int cmdTokenize(const Args& a);      // tokenize_command.cpp
int cmdInspect(const Args& a);       // inspect_command.cpp
int cmdBench(const Args& a);         // bench_command.cpp
int cmdServe(const Args& a);         // serve_command.cpp
int runDevicesCommand(int argc, char** argv);  // devices_command.cpp: reads argv itself
int runAgentCommand(int argc, char** argv);    // agent_command.cpp: reads argv itself
int runTranscribeCommand(int argc, char** argv);  // transcribe_command.cpp: reads argv itself (FILE first)

// bench_serving_command.cpp: the parts of `wb bench` that cmdBench hands on to.
int cmdBenchServing(const Args& a);
int cmdBenchListTargets(const Args& a);
int cmdBenchReport(const Args& a);

}  // namespace wb::cli
