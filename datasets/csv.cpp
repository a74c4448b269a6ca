#include "csv.hpp"

#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "driftguard/errors.hpp"

namespace driftguard::data {

LineReader::LineReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
  if (file_ == nullptr) {
    throw IoError(path + ": " + (errno == ENOENT ? "no such file" : std::strerror(errno)));
  }
}

LineReader::~LineReader() { gzclose(file_); }

bool LineReader::next(std::string& line) {
  line.clear();
  char buffer[4096];
  while (gzgets(file_, buffer, sizeof buffer) != nullptr) {
    line += buffer;
    if (line.back() == '\n') {
      line.pop_back();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      ++number_;
      return true;
    }
  }
  int status = Z_OK;
  const char* message = gzerror(file_, &status);
  if (status != Z_OK) {
    throw IoError(path_ + ": cannot read after line " + std::to_string(number_) + " (" + message +
                  ")");
  }
  if (line.empty()) return false;
  ++number_;  // a last line without a newline
  return true;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(line.substr(start, comma - start));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

std::string_view without_bom(std::string_view line) {
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  return line;
}

bool parse_finite(std::string_view field, double& value) {
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  return error == std::errc() && end == field.data() + field.size() && std::isfinite(value);
}

}  // namespace driftguard::data
