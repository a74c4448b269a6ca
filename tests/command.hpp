#pragma once
// Running the built command-line tools from tests, as a user would.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace driftguard::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A built tool: the path CMake compiled in, unless the environment variable `variable` names
// another (the device check runs the test binaries away from their build tree).
inline std::string tool_path(const char* variable, const char* built) {
  const char* moved = std::getenv(variable);
  return moved != nullptr && *moved != '\0' ? moved : built;
}

// Runs `command` through the shell; `scratch` is a folder for the captured streams.
inline CommandResult run_command(const std::string& command, const std::filesystem::path& scratch) {
  const std::filesystem::path out = scratch / "stdout.txt", err = scratch / "stderr.txt";
  const std::string line = command + " >'" + out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(line.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out), read_text(err)};
}

// A fresh folder for this test process: ctest runs each test in its own process, several at once.
inline std::filesystem::path process_temp_dir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / (prefix + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace driftguard::testing
