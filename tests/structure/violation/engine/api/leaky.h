// A public header that leaks an internal type: refused by the include rule. Never compiled.
#pragma once
#include "api/model_types.h"
#include "core/result.h"
#include "models/glm/glm_config.h"
