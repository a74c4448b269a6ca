#pragma once
// Internal: output files that appear whole or not at all. A run that fails half way leaves what
// the target held before, never a complete-looking file with part of the rows.
#include <string>
#include <string_view>

namespace driftguard::detail {

// Writes all of `text` to `fd` (retrying short and interrupted writes); IoError naming `path`.
void write_all(int fd, std::string_view text, const std::string& path);

// A new regular file written under a temporary name of its own next to the target and renamed
// over the target by commit() (after an fsync; the directory is synced after the rename, best
// effort), so a crash leaves the old file or the new one, whole. The temporary name is created
// exclusively (".NAME.PID.N.tmp"): it can never be another file, such as an input named OUT.tmp;
// those of processes that no longer run are removed. A target that is a symbolic link is
// resolved, so the link goes on naming the new file; a replaced file's permissions are kept.
// Destroying an uncommitted AtomicFile removes the temporary file. IoError when the target is a
// directory, a device or another non-regular file (anything under /dev or /proc), or on any
// failing call; the target's directory must be writable.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temporary() const noexcept { return temporary_; }
  int fd() const noexcept { return fd_; }
  // Whatever wrote the temporary file through its own descriptors must have closed them.
  void commit();

 private:
  std::string target_, temporary_;
  int fd_ = -1;
  bool committed_ = false;
};

// For a stream target: /dev/stdout and /dev/stderr (and their /dev/fd, /proc/self/fd names) as
// a duplicate of the process's own descriptor, so writes share its offset; anything else under
// /dev or /proc, or an existing pipe, terminal or other non-regular file, opened to append. -1
// for a path to a regular file (or none yet). IoError when the stream cannot be opened.
int open_stream_output(const std::string& path);

// `text` as the whole of `path`, through an AtomicFile; a stream target (open_stream_output) is
// written directly.
void write_file_atomically(const std::string& path, std::string_view text);

}  // namespace driftguard::detail
