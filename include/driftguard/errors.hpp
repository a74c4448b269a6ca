#pragma once
// Typed exceptions thrown at the library's public boundary. The library never calls abort/exit;
// the CLI turns each into one line on stderr and a non-zero exit code.
#include <stdexcept>
#include <string>

namespace driftguard {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Arguments or data that break a documented contract (shapes, schema ranges, CLI values).
class InvalidInput : public Error {
 public:
  using Error::Error;
};

// A file that cannot be opened, read, written or that has the wrong layout.
class IoError : public Error {
 public:
  using Error::Error;
};

// A model file whose structure or indices are invalid.
class ModelError : public Error {
 public:
  using Error::Error;
};

// The requested backend is not compiled in or has no usable device.
class BackendUnavailable : public Error {
 public:
  using Error::Error;
};

// A failed CUDA runtime call or kernel launch; the message names the call, file and line.
class CudaError : public Error {
 public:
  CudaError(const std::string& call, const std::string& file, int line, const std::string& what)
      : Error("CUDA error in " + call + " at " + file + ":" + std::to_string(line) + ": " + what) {}
};

}  // namespace driftguard
