#pragma once
// Runs a test suite once per backend; CUDA cases skip with a reason where no device is present.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "driftguard/context.hpp"

namespace driftguard::testing {

class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::Cuda && cuda_device_count() == 0) {
      GTEST_SKIP() << (cuda_compiled() ? "no CUDA device on this machine" : "built without CUDA");
    }
    ctx_.emplace(ContextOptions{.backend = GetParam()});
  }
  Context& ctx() { return *ctx_; }

 private:
  std::optional<Context> ctx_;
};

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return std::string(to_string(info.param));
}

}  // namespace driftguard::testing

#define DG_INSTANTIATE_BACKENDS(suite)                                                             \
  INSTANTIATE_TEST_SUITE_P(                                                                        \
      Backends, suite, ::testing::Values(::driftguard::Backend::Cpu, ::driftguard::Backend::Cuda), \
      ::driftguard::testing::backend_name)
