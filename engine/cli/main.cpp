// wb: the headless front end of the engine. One file per command (generate_command.cpp, chat_command.cpp, ...),
// the options they share in cli_options.cpp; here the table of commands, the usage text and the dispatch.
#include <cstdio>
#include <string>

#include "api/server.h"
#include "cli/cli_options.h"
#include "cli/commands.h"

namespace {

using namespace wb::cli;

const char* kUsageHead = R"(wb — Workbench engine, headless

usage: wb <command> [options]

commands:
)";

struct Command {
    const char* name;
    // What follows the name in the usage text: the arguments, then one line of help (a '\n' continues it on the
    // next line, aligned under the help column).
    const char* help;
    int (*run)(const Args& a);
    int (*runArgv)(int argc, char** argv);  // instead of run: a command that reads its own arguments
};

const Command kCommands[] = {
    {"generate",
     "-m MODEL -p PROMPT   generate text (streamed); --json prints ids, text and timings",
     cmdGenerate, nullptr},
    {"chat",
     "-m MODEL              interactive chat through the engine, with the checkpoint's chat template\nwhen it has one; /image PATH attaches an image (vision models)",
     cmdChat, nullptr},
    {"ask",
     "-m MODEL -p QUESTION  one chat turn through the engine (any model, GLM-4 / GLM-4.1V included);\n--image FILE (repeatable) puts PNG/JPEG images before the question for\nvision models; thinking goes to stderr, the answer to stdout",
     cmdAsk, nullptr},
    {"tokenize",
     "-m MODEL -p TEXT      print token ids and pieces (--json)",
     cmdTokenize, nullptr},
    {"inspect",
     "-m MODEL              architecture, parameters, dtypes, context, tokenizer, memory (--json)",
     cmdInspect, nullptr},
    {"bench",
     "-m MODEL              prompt-processing and generation tokens/s (--json)",
     cmdBench, nullptr},
    {"serve",
     "-m MODEL              OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions, ...)",
     cmdServe, nullptr},
    {"devices",
     "                      the CPU and any CUDA GPUs this build can use (--json)",
     nullptr, runDevicesCommand},
    {"agent",
     "-m MODEL|--url URL    the phone agent over a folder of screenshots (--task, --screens, --out;\n`wb agent --help`)",
     nullptr, runAgentCommand},
    {"transcribe",
     "FILE                  speech segments of an audio file (--vad-model SILERO --vad-only,\n--json; `wb transcribe --help`)",
     nullptr, runTranscribeCommand},
};

const char* kUsageOptions = R"(
MODEL is a .gguf file or a Hugging Face folder (config.json + *.safetensors).

common options:
  -m, --model PATH        model file or folder
  -t, --threads N         CPU threads (default: all cores)
  --precision P           native | fp32 | fp16 | bf16 | int8 (weight-only, per-channel) (default: native)
  --device D --tp N       (ask, chat, serve, bench) run on cpu or cuda, tensor parallel over N devices (default cpu, 1)
  --json                  machine-readable output
generate/chat options:
  -p, --prompt TEXT       prompt text (generate)
  -f, --file PATH         read the prompt from a file
  -n, --max-tokens N      tokens to generate (default 128)
  --temp T                temperature (default 0 = greedy)
  --top-k K  --top-p P  --min-p P
  --repeat-penalty R  --presence-penalty P  --frequency-penalty F  --repeat-last-n N
  --seed S                sampling seed
  --stop TEXT             stop string (repeatable)
  --no-bos                do not prepend BOS
  --special               parse special-token text in the prompt (e.g. "</s>") as control tokens
  --system TEXT           system prompt (chat, ask)
  --image FILE            image for a vision model (ask; repeatable, in order)
  --no-think              ask the template for no thinking (enable_thinking=false)
  --mmproj F.gguf         (ask, chat, serve, bench) a GLM-4.1V GGUF text model's vision tower (llama.cpp's mmproj
                          file); default: the one mmproj*.gguf beside the text file
  --max-pixels N          vision models: resize images to at most N pixels (ask, serve, bench; default: the
                          checkpoint's preprocessor_config.json; phone screenshots: 5000000)
  --kv-cache-dtype T      (ask, chat, serve, bench, agent) auto | f32 | f16: f16 halves the KV cache (CPU only);
                          auto takes f16 on the CPU when the context is 16,384 tokens or more (default auto)
bench options (single sequence, like llama-bench):
  -p, --pp N              prompt tokens (default 128)
  -n, --tg N              generated tokens (default 64)
  -r, --reps N            repetitions (default 3)
  -d, --depth N           context already in the cache before each test (llama-bench's -d; default 0)
bench options (serving load, continuous batching):
  --concurrency 1,4,8     requests kept in flight, one run per value
  --preset article        the article's workload: 128 in / 64 out at concurrency 1, 4, 8 (tools/article-table
                          runs it over this engine, HF Transformers and llama.cpp into one comparison file)
  --input N --output M    tokens in / out per request (default 128 / 64, the article's workload)
  --requests N            requests per run (default max(4 x concurrency, 8))
  --p99-limit-ms X        report the highest concurrency whose end-to-end P99 stays under X ms
  --max-num-seqs N        engine batch limit (default 64)
  --request-rate R        Poisson arrivals at R requests/s (open loop; --concurrency caps what is in flight)
  --image FILE            a multimodal workload: each request is one chat message of the image(s) (repeatable, in
                          order) then the prompt; each request's images get new pixels (a few changed) so no image
                          cache answers, unless --same-image. Vision models; servers through the chat endpoint
  --url URL --model-name N  benchmark an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1) instead of
                          loading the model; -m MODEL then only supplies the tokenizer for exact prompts
  --endpoint E            completions (default: token-id prompts) or chat (also in process: the chat a server
                          gets; with images, always chat); --api-key K; --no-ignore-eos. Chat and image prompts are
                          text that round-trips through the model's tokenizer (needs -m for a server), so every
                          target counts the same prompt tokens; each run prints the target's own count, and
                          --append-to warns when runs of one workload counted more than 2 apart
  --target ID             with --url: a comparison-target plugin (vllm, trtllm, sglang, llamacpp, ollama, openai,
                          transformers)
                          that also reads the server's own memory and KV use while the run goes
  --list-targets          list the target plugins (launch line, health probe, metrics) and broken ones
  --plugin-dir DIR        look for plugins in DIR first (also WB_PLUGIN_PATH, colon-separated)
  --label NAME            the run's name in tables (default: workbench (PRECISION), or MODEL @ URL)
  --format F              table | json | csv | md (the article's table)
  --append-to FILE.json   add this run to a comparison file (several targets / precisions)
  --report FILE.json      print a comparison file (--format md | csv | json), runs nothing
serve options:
  --host H                address to bind (default 127.0.0.1: loopback only)
  --port P                port (default 8000; 0 picks a free one and prints it)
  --served-model-name N   the model id clients send (default: the model file's stem)
  --api-key K             require "Authorization: Bearer K" on /v1/*
  --max-body-mb N         request body limit in MB (default 64)
  --max-images N          images per request (default 10); --max-audios N likewise
  --max-queued N          requests waiting beyond the batch before 429 (default 256)
  --max-num-seqs N        engine batch limit (default 64); --kv-cache-mb N: KV pool size
  --log-requests          one line per request on stderr
  --asr-model PATH        a Whisper model beside the chat model: POST /v1/audio/transcriptions, and input_audio
                          chat parts transcribed into the prompt (--vad-model SILERO trims silence)
)";

std::string usage() {
    std::string s = kUsageHead;
    for (const Command& c : kCommands) {
        std::string line = "  " + std::string(c.name);
        line.resize(13, ' ');
        for (const char* p = c.help; *p; ++p) line += *p == '\n' ? "\n" + std::string(35, ' ') : std::string(1, *p);
        s += line + "\n";
    }
    return s + kUsageOptions;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string usageText = usage();
    const char* kUsage = usageText.c_str();
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--version" || cmd == "version") {
        std::printf("wb %s\n", kVersion);
        return 0;
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        std::fputs(kUsage, stdout);
        std::fputs(wb::serveLimitOptionsHelp(), stdout);  // the rest of the serve options, beside the server
        return 0;
    }
    const Command* command = nullptr;
    for (const Command& c : kCommands)
        if (cmd == c.name) command = &c;
    if (command && command->runArgv) return command->runArgv(argc, argv);
    Args a;
    a.command = cmd;
    std::string err;
    if (!parseArgs(argc, argv, a, err)) {
        std::fprintf(stderr, "wb: %s\n", err.c_str());
        return 2;
    }
    if (a.has("help")) {
        std::fputs(kUsage, stdout);
        std::fputs(wb::serveLimitOptionsHelp(), stdout);  // the rest of the serve options, beside the server
        return 0;
    }
    if (command) return command->run(a);
    std::fprintf(stderr, "wb: unknown command \"%s\"\n\n%s", cmd.c_str(), kUsage);
    return 2;
}
