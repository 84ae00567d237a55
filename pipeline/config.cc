#include "pipeline/config.h"
// Implementation pending.
