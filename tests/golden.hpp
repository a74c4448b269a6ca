#pragma once
// Golden files (tests/golden/*.json, made by the scripts beside them from the real peers).
#include <gtest/gtest.h>

#include <cmath>
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

// |actual - expected| <= rel |expected| + abs, saying both values on failure.
inline ::testing::AssertionResult close(double actual, double expected, double rel,
                                        double abs = 0.0) {
  if (std::abs(actual - expected) <= rel * std::abs(expected) + abs) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "actual " << actual << " expected " << expected
                                       << " (diff " << std::abs(actual - expected) << ")";
}

}  // namespace driftguard::testing
