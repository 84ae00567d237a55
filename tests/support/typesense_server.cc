#include "tests/support/typesense_server.h"
