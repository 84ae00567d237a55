#include "pipeline/app/cli.h"

int main(int argc, char** argv) { return searchsync::RunCli(argc, argv); }
