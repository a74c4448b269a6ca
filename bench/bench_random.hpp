#pragma once
// splitmix64: the benchmarks' input generator, fast enough to fill a 1 GiB batch in well under a
// second per pass, and the same numbers on every machine.
#include <cstdint>

namespace driftguard::bench {

struct Random {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

}  // namespace driftguard::bench
