#include "csv.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "driftguard/errors.hpp"

namespace driftguard::data {

LineReader::LineReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
  if (file_ == nullptr) {
    throw IoError(path + ": " + (errno == ENOENT ? "no such file" : std::strerror(errno)));
  }
}

LineReader::~LineReader() { gzclose(file_); }

bool LineReader::next(std::string& line) {
  for (;;) {
    const std::size_t end = buffer_.find('\n', start_);
    if (end != std::string::npos) {
      line.assign(buffer_, start_, end - start_);
      start_ = end + 1;
      break;
    }
    buffer_.erase(0, start_);
    start_ = 0;
    char chunk[1 << 16];
    const int n = gzread(file_, chunk, sizeof chunk);
    if (n < 0) {
      int status = Z_OK;
      const char* message = gzerror(file_, &status);
      throw IoError(path_ + ": cannot read after line " + std::to_string(number_) + " (" + message +
                    ")");
    }
    if (n == 0) {
      if (buffer_.empty()) return false;
      line = std::move(buffer_);  // a last line without a newline
      buffer_.clear();
      break;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  ++number_;
  if (line.find('\0') != std::string::npos) {
    throw IoError(path_ + ": line " + std::to_string(number_) + " holds a NUL byte (not text)");
  }
  return true;
}

std::vector<std::string> split_fields(std::string_view line, const std::string& where) {
  std::vector<std::string> fields;
  std::size_t at = 0;
  for (;;) {
    std::string field;
    if (at < line.size() && line[at] == '"') {
      for (++at;; ++at) {
        if (at == line.size()) throw IoError(where + "a quoted field is not closed");
        if (line[at] != '"') {
          field += line[at];
        } else if (at + 1 < line.size() && line[at + 1] == '"') {
          field += '"';
          ++at;
        } else {
          ++at;
          break;
        }
      }
      if (at < line.size() && line[at] != ',') {
        throw IoError(where + "text after the closing quote of field " +
                      std::to_string(fields.size() + 1));
      }
    } else {
      const std::size_t comma = std::min(line.find(',', at), line.size());
      field = line.substr(at, comma - at);
      at = comma;
    }
    fields.push_back(std::move(field));
    if (at == line.size()) return fields;
    ++at;  // the comma
  }
}

std::string_view without_bom(std::string_view line) {
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  return line;
}

std::filesystem::path output_directory(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw IoError(dir + ": cannot create directory (" + error.message() + ")");
  return dir;
}

bool fits_float32(double value) {
  if (!(std::abs(value) <= std::numeric_limits<float>::max())) return false;
  return value != std::trunc(value) || static_cast<double>(static_cast<float>(value)) == value;
}

bool parse_finite(std::string_view field, double& value) {
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  return error == std::errc() && end == field.data() + field.size() && std::isfinite(value);
}

}  // namespace driftguard::data
