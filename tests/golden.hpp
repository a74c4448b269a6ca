#pragma once
// Golden files (tests/golden/*.json, made by the scripts beside them from the real peers).
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace driftguard::testing {

// The parsed file, read once per test process. Throws when it is missing: golden files are part
// of the repository, so a missing one is a broken checkout, not a reason to skip.
inline const nlohmann::json& golden(const std::string& file) {
  static std::map<std::string, nlohmann::json> cache;
  if (const auto hit = cache.find(file); hit != cache.end()) return hit->second;
  const char* root = std::getenv("DRIFTGUARD_SOURCE_DIR");
  if (root == nullptr) throw std::runtime_error("DRIFTGUARD_SOURCE_DIR is not set");
  const std::string path = std::string(root) + "/tests/golden/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return cache.emplace(file, nlohmann::json::parse(in)).first->second;
}

}  // namespace driftguard::testing
