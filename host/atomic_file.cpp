#include "host/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string_view>

#include "driftguard/errors.hpp"

namespace driftguard::detail {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what + ": " + std::strerror(errno));
}

bool starts_with_any(const std::string& path, std::initializer_list<std::string_view> prefixes) {
  for (const std::string_view prefix : prefixes) {
    if (path.starts_with(prefix)) return true;
  }
  return false;
}

// ".NAME.PID.N.tmp": the temporary names of `target`.
std::string temporary_prefix(const fs::path& target) {
  std::string prefix = ".";  // built by appends: g++ 12 warns falsely on "." + string
  prefix += target.filename().string();
  prefix += '.';
  return prefix;
}

// Temporary files of `target` left by processes that no longer run (killed half way): removed,
// so that they do not pile up. Best effort: a directory that cannot be listed is left alone.
void remove_stale_temporaries(const fs::path& target) {
  const std::string prefix = temporary_prefix(target);
  std::error_code error;
  const fs::path directory = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(".tmp")) continue;
    // Exactly PREFIX PID "." N ".tmp": not the temporaries of a target "NAME.5".
    char* after = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &after, 10);
    if (pid <= 0 || *after != '.') continue;
    char* counter_end = nullptr;
    (void)std::strtoul(after + 1, &counter_end, 10);
    if (counter_end == after + 1 || std::string_view(counter_end) != ".tmp") continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink(it->path().c_str());
  }
}

}  // namespace

void write_all(int fd, std::string_view text, const std::string& path) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path, "cannot write");
    written += static_cast<std::size_t>(n);
  }
}

int open_stream_output(const std::string& path) {
  // The process's own standard streams: written through the same open file (shared offset), so
  // nothing the tool prints there overwrites the lines, whatever the shell redirected them to.
  if (path == "/dev/stdout" || path == "/dev/fd/1" || path == "/proc/self/fd/1") {
    return ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  }
  if (path == "/dev/stderr" || path == "/dev/fd/2" || path == "/proc/self/fd/2") {
    return ::fcntl(2, F_DUPFD_CLOEXEC, 3);
  }
  struct stat st {};
  const bool special =
      starts_with_any(path, {"/dev/", "/proc/"}) ||
      (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode));
  if (!special) return -1;
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open for writing");
  return fd;
}

AtomicFile::AtomicFile(const std::string& path) : target_(path) {
  std::error_code error;
  int hops = 0;
  for (; fs::is_symlink(target_, error); ++hops) {
    if (hops == 40) {
      errno = ELOOP;
      fail(path, "cannot write the output here");
    }
    const fs::path link = fs::read_symlink(target_, error);
    target_ = (link.is_absolute() ? link : fs::path(target_).parent_path() / link).string();
  }
  struct stat st {};
  const bool exists = ::stat(target_.c_str(), &st) == 0;
  if (starts_with_any(target_, {"/dev/", "/proc/"}) || (exists && !S_ISREG(st.st_mode))) {
    errno = exists && S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    fail(path, "cannot write the output here (not a regular file)");
  }
  const fs::path target(target_);
  remove_stale_temporaries(target);
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; fd_ < 0; ++attempt) {
    std::string name = temporary_prefix(target);
    name += std::to_string(::getpid());
    name += '.';
    name += std::to_string(counter++);
    name += ".tmp";
    temporary_ = (target.parent_path() / name).string();
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || attempt == 100)) {
      fail(path, "cannot create a temporary file beside it (" + temporary_ + ")");
    }
  }
  // A file replaced keeps its permissions (a private output stays private).
  if (exists) (void)::fchmod(fd_, st.st_mode & 07777);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail(temporary_, "fsync failed");
  ::close(fd_);
  fd_ = -1;
  // The directory is opened before the rename, and its sync is best effort: once the rename is
  // done the output is in place, and a directory that cannot be read must not turn that into a
  // failure.
  const fs::path parent = fs::absolute(target_).parent_path();
  const int directory = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) {
    const int rename_errno = errno;
    if (directory >= 0) ::close(directory);
    errno = rename_errno;
    fail(target_, "cannot rename into place");
  }
  committed_ = true;
  if (directory >= 0) {
    (void)::fsync(directory);
    ::close(directory);
  }
}

void write_file_atomically(const std::string& path, std::string_view text) {
  if (const int fd = open_stream_output(path); fd >= 0) {
    try {
      write_all(fd, text, path);
    } catch (const IoError&) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    return;
  }
  AtomicFile file(path);
  write_all(file.fd(), text, file.temporary());
  file.commit();
}

}  // namespace driftguard::detail
