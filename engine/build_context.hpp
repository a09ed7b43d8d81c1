#pragma once
// Build contexts (DESIGN §6): scan_context() walks a context once, applies `.dockerignore` and
// hashes every file (through an optional on-disk DigestCache); content_hash() turns the entries and
// the build's inputs into the image tag; ContextTarStream produces the canonical tar for dockerd,
// re-hashing each file as it reads it. All of it blocks on the file system: run it on the thread
// pool, never on the I/O thread. Nothing is shared: one thread at a time per value or stream.

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"

namespace odd::engine {

using Sha256Digest = std::array<unsigned char, 32>;

struct ContextEntry {
  enum Type : std::uint8_t { kFile, kDir, kSymlink };

  std::string path;  // relative to the context root, "/"-separated, no trailing slash
  Type type = kFile;
  std::uint32_t mode = 0;   // permission bits with setuid, setgid and sticky (07777)
  std::string link_target;  // kSymlink: as readlink returned it
  std::uint64_t size = 0;   // kFile: bytes of content
  timespec mtime{};         // sent in the tar; never hashed
  // For the digest cache.
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  timespec ctime{};
  Sha256Digest digest{};  // kFile: SHA-256 of the content
};

struct ContextOptions {
  std::filesystem::path context_dir;
  std::string dockerfile = "Dockerfile";   // relative to context_dir
  std::uint64_t size_limit = 0;            // bytes of file content; 0 means no limit
  std::filesystem::path digest_cache_dir;  // empty: no cache
  // A file changed this close to the scan's start (mtime or ctime) is too recent for its stat to
  // prove it unchanged later (git's racy-git rule): it is always read and never cached.
  std::chrono::nanoseconds racy_window = std::chrono::seconds(2);
};

struct ScanStats {
  std::uint64_t files_read = 0;  // files whose content was read to hash it
  std::uint64_t bytes_read = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t dirs_skipped = 0;  // excluded directories not descended into
};

struct BuildContext {
  std::filesystem::path root;
  std::string dockerfile;             // cleaned, relative to root
  std::vector<ContextEntry> entries;  // sorted by path, bytewise
  std::uint64_t total_size = 0;       // bytes of file content
  ScanStats stats;
};

// Walks options.context_dir: .dockerignore applied as dockerd applies it (the Dockerfile and
// .dockerignore are always kept, with their parent directories), symlinks kept as links, hard
// links as regular files, sockets left out. Errors name the path: not_found for a missing context
// directory or Dockerfile; invalid_argument for a bad .dockerignore, a symlink leading out of the
// context (absolute or through ".."), a fifo or device file, a context over size_limit (naming
// the 5 largest files); permission_denied for an unreadable file or directory; failed_precondition
// for a file that changed while it was read.
Result<BuildContext> scan_context(const ContextOptions& options);

struct HashInputs {
  std::map<std::string, std::string> build_args;
  std::string target;
  std::string platform;
  std::vector<std::string> base_image_ids;  // what the FROM lines resolve to, in Dockerfile order
};

// SHA-256 (64 hex digits) over each entry's path, type, mode, link target and content digest --
// never mtimes -- and the Dockerfile path, build args, target, platform and base image ids.
std::string content_hash(const BuildContext& context, const HashInputs& inputs);

// The image tag for a content hash: its first 12 hex digits.
std::string tag_for(std::string_view hash);

// The exact byte size of the tar ContextTarStream produces for `context`.
std::uint64_t tar_size(const BuildContext& context);

// The canonical tar of a scanned context, produced incrementally in O(buffer) memory: entries in
// order, ustar with PAX records for long names, uids and gids 0, no user or group names, modes and
// mtimes (whole seconds) kept. `context` must outlive the stream.
class ContextTarStream {
 public:
  explicit ContextTarStream(const BuildContext& context);
  ~ContextTarStream();
  ContextTarStream(const ContextTarStream&) = delete;
  ContextTarStream& operator=(const ContextTarStream&) = delete;

  // Fills up to `cap` (> 0) bytes; 0 at the end of the tar. A file that no longer has the size or
  // content it was hashed with fails with failed_precondition naming it, before the last piece of
  // that file is handed out; an unreadable one with permission_denied. After an error every read
  // returns it again, and the caller must abort the upload rather than finish it.
  Result<std::size_t> read(char* buf, std::size_t cap);

 private:
  Status open_entry();

  const BuildContext& context_;
  std::size_t next_ = 0;
  std::string pending_;  // headers or end-of-archive blocks not yet handed out
  std::size_t pending_at_ = 0;
  int fd_ = -1;
  std::uint64_t remaining_ = 0;
  std::uint64_t padding_ = 0;
  struct Hasher;
  std::unique_ptr<Hasher> hasher_;
  bool trailer_ = false;
  Status error_;
};

// What a file's stat says about it; equal stamps mean unchanged content.
struct FileStamp {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_sec = 0;
  std::uint32_t mtime_nsec = 0;
  std::int64_t ctime_sec = 0;
  std::uint32_t ctime_nsec = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// Content digests of files keyed by their stamp, kept in one file per context under the cache
// directory so a no-op rebuild reads no file content. A plain value: load, use, save.
class DigestCache {
 public:
  // The cache file of `context_dir` (its real path hashed) under `cache_dir`.
  static std::filesystem::path file_for(const std::filesystem::path& cache_dir,
                                        const std::filesystem::path& context_dir);

  // Reads `file`. A missing, truncated, corrupt or foreign file is an empty cache: it is only
  // a cache.
  static DigestCache load(const std::filesystem::path& file);

  std::optional<Sha256Digest> find(const FileStamp& stamp) const;
  void put(const FileStamp& stamp, const Sha256Digest& digest);
  std::size_t size() const { return entries_.size(); }

  // Replaces `file` atomically: a temporary file in the same directory, fsync, rename, fsync of
  // the directory. Creates the directory. permission_denied or internal naming the path.
  Status save(const std::filesystem::path& file) const;

 private:
  struct StampHash {
    std::size_t operator()(const FileStamp& s) const;
  };
  std::unordered_map<FileStamp, Sha256Digest, StampHash> entries_;
};

}  // namespace odd::engine
