#pragma once
// What the dataset converters share: lines of a plain or gzip file, comma-separated fields
// (RFC 4180 quoting within a line), numbers that must fill their whole field, and the directory
// they write into.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

struct gzFile_s;

namespace driftguard::data {

// Lines of a plain or gzip-compressed text file (zlib reads both).
class LineReader {
 public:
  explicit LineReader(const std::string& path);  // IoError when it cannot be opened
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  ~LineReader();

  // The next line without its line ending; false at the end of the file. IoError when the file
  // cannot be read (a corrupt gzip stream) or a line holds a NUL byte (not text; C-string
  // reading would have merged it with the next line).
  bool next(std::string& line);
  // The number of the line next() returned last, counting from 1.
  std::size_t number() const { return number_; }

 private:
  std::string path_;
  gzFile_s* file_;
  std::size_t number_ = 0;
  std::string buffer_;     // read ahead of the lines returned
  std::size_t start_ = 0;  // the next line's first byte in buffer_
};

// The fields of one line. A field may be quoted ("a, b"; "" inside stands for one quote); a quote
// left open, or text after a closing quote, is an IoError starting with `where`.
std::vector<std::string> split_fields(std::string_view line, const std::string& where);

// A header line without the byte-order mark Excel writes.
std::string_view without_bom(std::string_view line);

// `dir`, created with its parents when missing; IoError when it cannot be.
std::filesystem::path output_directory(const std::string& dir);

// The whole field as a finite number; false for anything else ("", "1e999", "3 ", "nan").
bool parse_finite(std::string_view field, double& value);

// Whether float32 holds `value` as the tables store it: within its range, and exactly when it is
// an integer (a count, an amount or a code that rounded would change silently); a fraction rounds.
bool fits_float32(double value);

}  // namespace driftguard::data
