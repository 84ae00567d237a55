#pragma once
// Shared bits of the micro-benchmarks: the header line (machine, build, sizes, seed) and timing.

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

namespace searchsync::bench {

inline std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown cpu";
}

inline void PrintHeader(const char* name, const std::string& sizes, unsigned seed) {
  utsname host{};
  uname(&host);
#ifdef NDEBUG
  const char* build = "optimized (NDEBUG)";
#else
  const char* build = "debug (assertions on)";
#endif
  std::printf("%s: %s, %u cores, %s %s, build %s, %s, seed %u\n", name, CpuModel().c_str(),
              std::thread::hardware_concurrency(), host.sysname, host.release, build, sizes.c_str(),
              seed);
}

class Stopwatch {
 public:
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

inline void Report(const char* case_name, size_t events, size_t bytes, double seconds) {
  std::printf("  %-28s %10.0f events/s %8.1f MB/s  (%zu events in %.3fs)\n", case_name,
              static_cast<double>(events) / seconds, static_cast<double>(bytes) / seconds / 1e6,
              events, seconds);
}

}  // namespace searchsync::bench
