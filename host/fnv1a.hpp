#pragma once
// Internal: FNV-1a, 64 bits. A fixed function, unlike std::hash, so that digests written to files
// (a checkpoint's reference digest, a profile's model fingerprint) are recognised by another build
// on another machine.
#include <cstdint>
#include <string_view>

namespace driftguard::detail {

class Fnv1a {
 public:
  Fnv1a() = default;
  // Goes on from an earlier value(): a digest of a file appended to piece by piece.
  explicit Fnv1a(std::uint64_t value) : hash_(value) {}
  void add(std::uint64_t word) { hash_ = (hash_ ^ word) * 0x100000001b3ull; }
  void add_bytes(std::string_view bytes) {
    for (const char c : bytes) add(static_cast<unsigned char>(c));
  }
  std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xcbf29ce484222325ull;
};

}  // namespace driftguard::detail
