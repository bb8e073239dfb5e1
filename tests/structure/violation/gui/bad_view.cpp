// A front end reaching past engine/api into a model's internals: tests/CMakeLists.txt checks that the include
// rule refuses this tree (include_rule_catches_violations). Never compiled.
#include "api/engine.h"
#include "bad_view.h"
#include "models/decoder/llama_model.h"
