#include "engine/build_context.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <new>
#include <system_error>
#include <tuple>
#include <utility>

#include "engine/dockerignore.hpp"

namespace odd::engine {
namespace {

constexpr std::size_t kBlock = 512;
constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::uint64_t kMaxOctal11 = 077777777777;  // what an 11-digit ustar field holds

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// One SHA-256 computation through OpenSSL's EVP interface (SHA-NI where the CPU has it).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr) throw std::bad_alloc();
    reset();
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void reset() {
    if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
  }
  void update(const void* data, std::size_t size) { EVP_DigestUpdate(ctx_, data, size); }
  void update(std::string_view s) { update(s.data(), s.size()); }
  void update_u64(std::uint64_t v) {
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(v >> (8 * i));
    update(le, sizeof le);
  }
  // Length-prefixed, so no two sequences of fields hash alike.
  void update_field(std::string_view s) {
    update_u64(s.size());
    update(s);
  }
  Sha256Digest finish() {
    Sha256Digest out{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out.data(), &len);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xF];
  }
  return out;
}

std::string human_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A read that retries on EINTR.
ssize_t read_some(int fd, void* buf, std::size_t size) {
  ssize_t n;
  do {
    n = ::read(fd, buf, size);
  } while (n < 0 && errno == EINTR);
  return n;
}

FileStamp stamp_of(const struct stat& st) {
  FileStamp s;
  s.dev = static_cast<std::uint64_t>(st.st_dev);
  s.ino = static_cast<std::uint64_t>(st.st_ino);
  s.size = static_cast<std::uint64_t>(st.st_size);
  s.mtime_sec = st.st_mtim.tv_sec;
  s.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
  s.ctime_sec = st.st_ctim.tv_sec;
  s.ctime_nsec = static_cast<std::uint32_t>(st.st_ctim.tv_nsec);
  return s;
}

FileStamp stamp_of(const ContextEntry& e) {
  FileStamp s;
  s.dev = e.dev;
  s.ino = e.ino;
  s.size = e.size;
  s.mtime_sec = e.mtime.tv_sec;
  s.mtime_nsec = static_cast<std::uint32_t>(e.mtime.tv_nsec);
  s.ctime_sec = e.ctime.tv_sec;
  s.ctime_nsec = static_cast<std::uint32_t>(e.ctime.tv_nsec);
  return s;
}

void fill_stat(ContextEntry& e, const struct stat& st) {
  e.mode = static_cast<std::uint32_t>(st.st_mode) & 07777u;
  e.size = e.type == ContextEntry::kFile ? static_cast<std::uint64_t>(st.st_size) : 0;
  e.mtime = st.st_mtim;
  e.ctime = st.st_ctim;
  e.dev = static_cast<std::uint64_t>(st.st_dev);
  e.ino = static_cast<std::uint64_t>(st.st_ino);
}

// A point in time as (seconds, nanoseconds), ordered.
using Instant = std::pair<std::int64_t, std::int64_t>;

Instant minus(const timespec& t, std::chrono::nanoseconds d) {
  const std::int64_t total_nsec = t.tv_nsec - d.count() % 1000000000;
  std::int64_t sec = t.tv_sec - d.count() / 1000000000;
  std::int64_t nsec = total_nsec;
  if (nsec < 0) {
    nsec += 1000000000;
    --sec;
  }
  return {sec, nsec};
}

struct Walker {
  const IgnoreMatcher& matcher;
  std::string root;  // as shown in messages
  std::string dockerfile;
  std::vector<ContextEntry>& entries;
  ScanStats& stats;

  std::string shown(std::string_view rel) const { return root + "/" + std::string(rel); }

  bool always_kept(std::string_view rel) const {
    return rel == dockerfile || rel == ".dockerignore";
  }

  bool holds_dockerfile(std::string_view dir) const {
    return dockerfile.size() > dir.size() && dockerfile.compare(0, dir.size(), dir) == 0 &&
           dockerfile[dir.size()] == '/';
  }

  // Reads the names in directory `fd` (taking ownership of it), sorted bytewise.
  Result<std::vector<std::string>> names(Fd fd, std::string_view rel) const {
    DIR* dir = ::fdopendir(fd.get());
    if (dir == nullptr) {
      return internal_error("cannot list " + shown(rel) + ": " + errno_text(errno));
    }
    fd.release();
    std::vector<std::string> out;
    errno = 0;
    while (const dirent* d = ::readdir(dir)) {
      const std::string_view name = d->d_name;
      if (name != "." && name != "..") out.emplace_back(name);
      errno = 0;
    }
    const int err = errno;
    ::closedir(dir);
    if (err != 0) return internal_error("cannot list " + shown(rel) + ": " + errno_text(err));
    std::sort(out.begin(), out.end());
    return out;
  }

  Status symlink_entry(int dirfd, const std::string& name, const std::string& rel,
                       const struct stat& st) {
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 256) + 1, '\0');
    while (true) {
      const ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n < 0) {
        return internal_error("cannot read symlink " + shown(rel) + ": " + errno_text(errno));
      }
      if (static_cast<std::size_t>(n) < target.size()) {
        target.resize(static_cast<std::size_t>(n));
        break;
      }
      target.resize(target.size() * 2);
    }
    // The link itself is sent; where it points must still be inside the context, judged
    // lexically as the build will see it.
    const std::size_t slash = rel.rfind('/');
    const std::string base = slash == std::string::npos ? "" : rel.substr(0, slash + 1);
    const std::string resolved = clean_path(base + target);
    if (target.empty() || target[0] == '/' || resolved == ".." || resolved.rfind("../", 0) == 0) {
      return invalid_argument("symlink " + shown(rel) + " points outside the build context (-> " +
                              target + ")");
    }
    ContextEntry e;
    e.path = rel;
    e.type = ContextEntry::kSymlink;
    e.link_target = std::move(target);
    fill_stat(e, st);
    entries.push_back(std::move(e));
    return ok_status();
  }

  Status walk(Fd dirfd, const std::string& rel_dir, const IgnoreMatcher::Scope& scope) {
    const int fd = dirfd.get();
    // names() closes its descriptor, so list through a duplicate and keep `fd` for *at() calls.
    Fd listing(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (listing.get() < 0) {
      return internal_error("cannot list " + shown(rel_dir) + ": " + errno_text(errno));
    }
    auto listed = names(std::move(listing), rel_dir);
    if (!listed) return listed.error();
    for (const std::string& name : *listed) {
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      struct stat st {};
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while we walked
        return internal_error("cannot stat " + shown(rel) + ": " + errno_text(errno));
      }
      if (S_ISDIR(st.st_mode)) {
        IgnoreMatcher::Scope inner = matcher.enter(scope, rel);
        const bool excluded = inner.excluded() && !holds_dockerfile(rel);
        if (excluded && matcher.can_skip(inner, rel)) {
          ++stats.dirs_skipped;
          continue;
        }
        const std::size_t at = entries.size();
        ContextEntry e;
        e.path = rel;
        e.type = ContextEntry::kDir;
        fill_stat(e, st);
        entries.push_back(std::move(e));
        Fd child(::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (child.get() < 0) {
          // Gone since it was listed, or excluded and unreadable: an excluded directory can
          // only hide re-included files, and dockerd's clients skip it the same way.
          const int err = errno;
          if ((excluded && err == EACCES) || err == ENOENT) {
            entries.pop_back();
            continue;
          }
          if (err == EACCES) return permission_denied("cannot read directory " + shown(rel));
          return internal_error("cannot open directory " + shown(rel) + ": " + errno_text(err));
        }
        if (Status s = walk(std::move(child), rel, inner); !s.ok()) return s;
        // An excluded directory is sent only as the parent of something re-included.
        if (excluded && entries.size() == at + 1) entries.pop_back();
        continue;
      }
      if (!always_kept(rel) && matcher.excluded(scope, rel)) continue;
      if (S_ISREG(st.st_mode)) {
        ContextEntry e;
        e.path = rel;
        e.type = ContextEntry::kFile;
        fill_stat(e, st);
        entries.push_back(std::move(e));
      } else if (S_ISLNK(st.st_mode)) {
        if (Status s = symlink_entry(fd, name, rel, st); !s.ok()) return s;
      } else if (S_ISSOCK(st.st_mode)) {
        continue;  // a tar cannot carry a socket; docker leaves them out too
      } else {
        return invalid_argument("cannot send " + shown(rel) +
                                ": a fifo or device file (add it to .dockerignore)");
      }
    }
    return ok_status();
  }
};

Result<std::string> read_dockerignore(int rootfd, const std::string& shown) {
  Fd fd(::openat(rootfd, ".dockerignore", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::string();
    if (errno == EACCES) return permission_denied("cannot read " + shown);
    return internal_error("cannot open " + shown + ": " + errno_text(errno));
  }
  std::string text;
  char buf[16384];
  while (true) {
    const ssize_t n = read_some(fd.get(), buf, sizeof buf);
    if (n < 0) return internal_error("cannot read " + shown + ": " + errno_text(errno));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

// Reads a file of the context to hash it, refreshing its stat from the open descriptor so the
// cache key and the digest describe the same content.
Status hash_file(int rootfd, const std::string& shown, ContextEntry& e, std::vector<char>& buf,
                 ScanStats& stats) {
  Fd fd(::openat(rootfd, e.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == EACCES) return permission_denied("cannot read " + shown + ": Permission denied");
    return failed_precondition("cannot open " + shown +
                               " (changed during the scan?): " + errno_text(errno));
  }
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0 || !S_ISREG(before.st_mode)) {
    return failed_precondition(shown + " changed during the scan");
  }
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  Sha256 sha;
  std::uint64_t total = 0;
  while (true) {
    const ssize_t n = read_some(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EACCES) return permission_denied("cannot read " + shown + ": Permission denied");
      return internal_error("cannot read " + shown + ": " + errno_text(errno));
    }
    if (n == 0) break;
    sha.update(buf.data(), static_cast<std::size_t>(n));
    total += static_cast<std::uint64_t>(n);
  }
  struct stat after {};
  if (::fstat(fd.get(), &after) != 0 || total != static_cast<std::uint64_t>(before.st_size) ||
      stamp_of(after) != stamp_of(before)) {
    return failed_precondition(shown + " changed while it was being hashed");
  }
  fill_stat(e, before);
  e.digest = sha.finish();
  ++stats.files_read;
  stats.bytes_read += total;
  return ok_status();
}

void put_octal(char* field, std::size_t width, std::uint64_t value) {
  // width-1 zero-padded octal digits and a NUL, as GNU tar and Go write them.
  field[width - 1] = '\0';
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

void put_string(char* field, std::size_t width, std::string_view s) {
  std::memcpy(field, s.data(), std::min(width, s.size()));
}

void add_pax_record(std::string& records, std::string_view key, std::string_view value) {
  // "<length> <key>=<value>\n", where <length> counts itself.
  const std::size_t base = key.size() + value.size() + 3;
  std::size_t length = base + 1;
  while (std::to_string(length).size() + base != length) {
    length = std::to_string(length).size() + base;
  }
  records += std::to_string(length);
  records += ' ';
  records += key;
  records += '=';
  records += value;
  records += '\n';
}

std::string header_block(std::string_view name, char type, std::uint32_t mode, std::uint64_t size,
                         std::uint64_t mtime, std::string_view link) {
  std::string block(kBlock, '\0');
  char* h = block.data();
  put_string(h, 100, name);
  put_octal(h + 100, 8, mode);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, mtime);
  std::memset(h + 148, ' ', 8);
  h[156] = type;
  put_string(h + 157, 100, link);
  static constexpr char kMagic[8] = {'u', 's', 't', 'a', 'r', '\0', '0', '0'};
  std::memcpy(h + 257, kMagic, sizeof kMagic);
  put_octal(h + 329, 8, 0);
  put_octal(h + 337, 8, 0);
  unsigned sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(block[i]);
  std::snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return block;
}

// The header blocks of one entry: a PAX extended header first when a field does not fit ustar.
std::string entry_headers(const ContextEntry& e) {
  std::string name = e.path;
  if (e.type == ContextEntry::kDir) name += '/';
  const char type =
      e.type == ContextEntry::kFile ? '0' : (e.type == ContextEntry::kDir ? '5' : '2');
  std::string records;
  if (name.size() > 100) add_pax_record(records, "path", name);
  if (e.link_target.size() > 100) add_pax_record(records, "linkpath", e.link_target);
  if (e.size > kMaxOctal11) add_pax_record(records, "size", std::to_string(e.size));
  const bool mtime_fits =
      e.mtime.tv_sec >= 0 && static_cast<std::uint64_t>(e.mtime.tv_sec) <= kMaxOctal11;
  if (!mtime_fits) add_pax_record(records, "mtime", std::to_string(e.mtime.tv_sec));
  std::string out;
  if (!records.empty()) {
    out = header_block("././@PaxHeader", 'x', 0644, records.size(), 0, "");
    out += records;
    out.append((kBlock - records.size() % kBlock) % kBlock, '\0');
  }
  out += header_block(name, type, e.mode, e.size > kMaxOctal11 ? 0 : e.size,
                      mtime_fits ? static_cast<std::uint64_t>(e.mtime.tv_sec) : 0, e.link_target);
  return out;
}

std::uint64_t padding_for(std::uint64_t size) { return (kBlock - size % kBlock) % kBlock; }

}  // namespace

Result<BuildContext> scan_context(const ContextOptions& options) {
  timespec start{};
  ::clock_gettime(CLOCK_REALTIME, &start);
  const Instant trusted_before = minus(start, options.racy_window);

  BuildContext context;
  context.root = options.context_dir;
  const std::string root = options.context_dir.string();
  const std::string where = "build context " + root;

  const std::string dockerfile = clean_path(options.dockerfile);
  if (dockerfile[0] == '/' || dockerfile == "." || dockerfile == ".." ||
      dockerfile.rfind("../", 0) == 0) {
    return invalid_argument(where + ": the Dockerfile path " + options.dockerfile +
                            " must name a file inside the context, relative to it");
  }
  context.dockerfile = dockerfile;

  Fd rootfd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (rootfd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return not_found(where + " does not exist");
    if (err == ENOTDIR) return invalid_argument(where + " is not a directory");
    if (err == EACCES) return permission_denied("cannot read " + where);
    return internal_error("cannot open " + where + ": " + errno_text(err));
  }
  struct stat dst {};
  if (::fstatat(rootfd.get(), dockerfile.c_str(), &dst, AT_SYMLINK_NOFOLLOW) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return not_found("Dockerfile " + root + "/" + dockerfile + " not found in the " + where);
    }
    if (err == EACCES) return permission_denied("cannot read " + root + "/" + dockerfile);
    return internal_error("cannot stat " + root + "/" + dockerfile + ": " + errno_text(err));
  }
  if (S_ISDIR(dst.st_mode)) {
    return invalid_argument("Dockerfile " + root + "/" + dockerfile + " is a directory");
  }

  auto ignore_text = read_dockerignore(rootfd.get(), root + "/.dockerignore");
  if (!ignore_text) return ignore_text.error();
  auto matcher = IgnoreMatcher::parse(*ignore_text);
  if (!matcher) return matcher.error().with_context(where);

  Walker walker{*matcher, root, dockerfile, context.entries, context.stats};
  Fd walk_fd(::fcntl(rootfd.get(), F_DUPFD_CLOEXEC, 0));
  if (Status s = walker.walk(std::move(walk_fd), "", matcher->root()); !s.ok()) return s;

  std::sort(context.entries.begin(), context.entries.end(),
            [](const ContextEntry& a, const ContextEntry& b) { return a.path < b.path; });
  std::vector<const ContextEntry*> files;
  for (const ContextEntry& e : context.entries) {
    if (e.type != ContextEntry::kFile) continue;
    context.total_size += e.size;
    files.push_back(&e);
  }
  if (options.size_limit != 0 && context.total_size > options.size_limit) {
    const std::size_t shown = std::min<std::size_t>(5, files.size());
    std::partial_sort(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(shown),
                      files.end(), [](const ContextEntry* a, const ContextEntry* b) {
                        return a->size != b->size ? a->size > b->size : a->path < b->path;
                      });
    std::string largest;
    for (std::size_t i = 0; i < shown; ++i) {
      if (i > 0) largest += ", ";
      largest += files[i]->path + " (" + human_size(files[i]->size) + ")";
    }
    return invalid_argument(where + " is " + human_size(context.total_size) +
                            ", over the limit of " + human_size(options.size_limit) +
                            "; largest: " + largest);
  }

  std::optional<std::filesystem::path> cache_file;
  DigestCache loaded;
  DigestCache fresh;
  bool cache_changed = false;
  if (!options.digest_cache_dir.empty()) {
    cache_file = DigestCache::file_for(options.digest_cache_dir, options.context_dir);
    loaded = DigestCache::load(*cache_file);
  }
  auto racy = [&](const FileStamp& s) {
    return std::max(Instant(s.mtime_sec, s.mtime_nsec), Instant(s.ctime_sec, s.ctime_nsec)) >=
           trusted_before;
  };
  std::vector<char> buf(kReadBuffer);
  for (ContextEntry& e : context.entries) {
    if (e.type != ContextEntry::kFile) continue;
    const FileStamp walked = stamp_of(e);
    if (cache_file && !racy(walked)) {
      if (auto digest = loaded.find(walked)) {
        e.digest = *digest;
        fresh.put(walked, *digest);
        ++context.stats.cache_hits;
        continue;
      }
    }
    if (Status s = hash_file(rootfd.get(), root + "/" + e.path, e, buf, context.stats); !s.ok()) {
      return s;
    }
    const FileStamp hashed = stamp_of(e);
    if (cache_file && !racy(hashed)) {
      fresh.put(hashed, e.digest);
      cache_changed = true;
    }
  }
  if (cache_file && (cache_changed || fresh.size() != loaded.size())) {
    if (Status s = fresh.save(*cache_file); !s.ok()) {
      spdlog::warn("{}: digest cache not saved: {}", where, s.message());
    }
  }
  return context;
}

std::string content_hash(const BuildContext& context, const HashInputs& inputs) {
  Sha256 sha;
  sha.update_field("odd build context v1");
  sha.update_u64(context.entries.size());
  for (const ContextEntry& e : context.entries) {
    sha.update_u64(e.type);
    sha.update_field(e.path);
    sha.update_u64(e.mode);
    if (e.type == ContextEntry::kSymlink) sha.update_field(e.link_target);
    if (e.type == ContextEntry::kFile) {
      sha.update_u64(e.size);
      sha.update(e.digest.data(), e.digest.size());
    }
  }
  sha.update_field(context.dockerfile);
  sha.update_u64(inputs.build_args.size());
  for (const auto& [key, value] : inputs.build_args) {
    sha.update_field(key);
    sha.update_field(value);
  }
  sha.update_field(inputs.target);
  sha.update_field(inputs.platform);
  sha.update_u64(inputs.base_image_ids.size());
  for (const std::string& id : inputs.base_image_ids) sha.update_field(id);
  const Sha256Digest digest = sha.finish();
  return hex(digest.data(), digest.size());
}

std::string tag_for(std::string_view hash) { return std::string(hash.substr(0, 12)); }

std::uint64_t tar_size(const BuildContext& context) {
  std::uint64_t total = 2 * kBlock;
  for (const ContextEntry& e : context.entries) {
    total += entry_headers(e).size();
    if (e.type == ContextEntry::kFile) total += e.size + padding_for(e.size);
  }
  return total;
}

struct ContextTarStream::Hasher {
  Sha256 sha;
};

ContextTarStream::ContextTarStream(const BuildContext& context)
    : context_(context), hasher_(std::make_unique<Hasher>()) {}

ContextTarStream::~ContextTarStream() {
  if (fd_ >= 0) ::close(fd_);
}

Status ContextTarStream::open_entry() {
  const ContextEntry& e = context_.entries[next_];
  pending_ = entry_headers(e);
  pending_at_ = 0;
  if (e.type != ContextEntry::kFile) return ok_status();
  const std::string shown = context_.root.string() + "/" + e.path;
  fd_ = ::open(shown.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd_ < 0) {
    if (errno == EACCES) return permission_denied("cannot read " + shown + ": Permission denied");
    return failed_precondition(shown + " changed after it was hashed: " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    return failed_precondition(shown + " changed after it was hashed: no longer a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) != e.size) {
    return failed_precondition(shown + " changed after it was hashed: size was " +
                               std::to_string(e.size) + " bytes, now " +
                               std::to_string(st.st_size));
  }
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  remaining_ = e.size;
  padding_ = padding_for(e.size);
  hasher_->sha.reset();
  return ok_status();
}

Result<std::size_t> ContextTarStream::read(char* buf, std::size_t cap) {
  if (!error_.ok()) return error_;
  if (cap == 0) return invalid_argument("reading a build context tar into an empty buffer");
  auto fail = [this](Status s) -> Result<std::size_t> {
    error_ = std::move(s);
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    return error_;
  };
  std::size_t n = 0;
  while (n < cap) {
    if (pending_at_ < pending_.size()) {
      const std::size_t k = std::min(cap - n, pending_.size() - pending_at_);
      std::memcpy(buf + n, pending_.data() + pending_at_, k);
      pending_at_ += k;
      n += k;
    } else if (fd_ >= 0) {
      const ContextEntry& e = context_.entries[next_ - 1];
      const std::string shown = context_.root.string() + "/" + e.path;
      if (remaining_ > 0) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(cap - n, remaining_));
        const ssize_t got = read_some(fd_, buf + n, want);
        if (got < 0) return fail(internal_error("cannot read " + shown + ": " + errno_text(errno)));
        if (got == 0) {
          return fail(failed_precondition(shown + " changed after it was hashed: it shrank"));
        }
        hasher_->sha.update(buf + n, static_cast<std::size_t>(got));
        remaining_ -= static_cast<std::uint64_t>(got);
        n += static_cast<std::size_t>(got);
      }
      if (remaining_ == 0) {
        // Checked in the call that reads the file's last piece, so that piece never leaves.
        char probe;
        if (read_some(fd_, &probe, 1) != 0 || hasher_->sha.finish() != e.digest) {
          return fail(failed_precondition(
              shown + " changed after it was hashed, so the image would not match its tag"));
        }
        ::close(fd_);
        fd_ = -1;
      }
    } else if (padding_ > 0) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(cap - n, padding_));
      std::memset(buf + n, 0, k);
      padding_ -= k;
      n += k;
    } else if (next_ < context_.entries.size()) {
      const Status s = open_entry();
      ++next_;
      if (!s.ok()) return fail(s);
    } else if (!trailer_) {
      pending_.assign(2 * kBlock, '\0');
      pending_at_ = 0;
      trailer_ = true;
    } else {
      break;
    }
  }
  return n;
}

std::size_t DigestCache::StampHash::operator()(const FileStamp& s) const {
  std::size_t h = std::hash<std::uint64_t>()(s.ino);
  auto mix = [&h](std::uint64_t v) {
    h ^= std::hash<std::uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  mix(s.dev);
  mix(s.size);
  mix(static_cast<std::uint64_t>(s.mtime_sec));
  mix(s.mtime_nsec);
  return h;
}

namespace {

constexpr char kCacheMagic[8] = {'o', 'd', 'd', 'd', 'i', 'g', 's', '1'};
constexpr std::size_t kRecord = 8 * 5 + 4 * 2 + 32;

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i));
}

std::uint64_t get_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::filesystem::path DigestCache::file_for(const std::filesystem::path& cache_dir,
                                            const std::filesystem::path& context_dir) {
  std::error_code ec;
  std::filesystem::path real = std::filesystem::canonical(context_dir, ec);
  if (ec) real = std::filesystem::absolute(context_dir, ec);
  Sha256 sha;
  sha.update(real.string());
  const Sha256Digest d = sha.finish();
  return cache_dir / ("context-" + hex(d.data(), 8) + ".digests");
}

DigestCache DigestCache::load(const std::filesystem::path& file) {
  DigestCache cache;
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return cache;
  std::string data;
  char buf[65536];
  while (true) {
    const ssize_t n = read_some(fd.get(), buf, sizeof buf);
    if (n < 0) return cache;
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  if (data.size() < 16 + 32 || std::memcmp(p, kCacheMagic, 8) != 0) return cache;
  const std::uint64_t count = get_le(p + 8, 8);
  if (count > (data.size() - 16 - 32) / kRecord || data.size() != 16 + count * kRecord + 32) {
    return cache;
  }
  Sha256 sha;
  sha.update(p, data.size() - 32);
  const Sha256Digest sum = sha.finish();
  if (std::memcmp(sum.data(), p + data.size() - 32, 32) != 0) return cache;
  cache.entries_.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    const unsigned char* r = p + 16 + i * kRecord;
    FileStamp s;
    s.dev = get_le(r, 8);
    s.ino = get_le(r + 8, 8);
    s.size = get_le(r + 16, 8);
    s.mtime_sec = static_cast<std::int64_t>(get_le(r + 24, 8));
    s.mtime_nsec = static_cast<std::uint32_t>(get_le(r + 32, 4));
    s.ctime_sec = static_cast<std::int64_t>(get_le(r + 36, 8));
    s.ctime_nsec = static_cast<std::uint32_t>(get_le(r + 44, 4));
    Sha256Digest d;
    std::memcpy(d.data(), r + 48, 32);
    cache.entries_.emplace(s, d);
  }
  return cache;
}

std::optional<Sha256Digest> DigestCache::find(const FileStamp& stamp) const {
  const auto it = entries_.find(stamp);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void DigestCache::put(const FileStamp& stamp, const Sha256Digest& digest) {
  entries_[stamp] = digest;
}

Status DigestCache::save(const std::filesystem::path& file) const {
  const std::filesystem::path dir = file.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return (ec == std::errc::permission_denied ? permission_denied : internal_error)(
        "cannot create " + dir.string() + ": " + ec.message());
  }
  std::string data(kCacheMagic, sizeof kCacheMagic);
  put_le(data, entries_.size(), 8);
  // Sorted, so the same cache always writes the same bytes.
  std::vector<std::pair<FileStamp, Sha256Digest>> sorted(entries_.begin(), entries_.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    const FileStamp& x = a.first;
    const FileStamp& y = b.first;
    return std::tie(x.dev, x.ino, x.size, x.mtime_sec, x.mtime_nsec, x.ctime_sec, x.ctime_nsec) <
           std::tie(y.dev, y.ino, y.size, y.mtime_sec, y.mtime_nsec, y.ctime_sec, y.ctime_nsec);
  });
  for (const auto& [s, d] : sorted) {
    put_le(data, s.dev, 8);
    put_le(data, s.ino, 8);
    put_le(data, s.size, 8);
    put_le(data, static_cast<std::uint64_t>(s.mtime_sec), 8);
    put_le(data, s.mtime_nsec, 4);
    put_le(data, static_cast<std::uint64_t>(s.ctime_sec), 8);
    put_le(data, s.ctime_nsec, 4);
    data.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  Sha256 sha;
  sha.update(data);
  const Sha256Digest sum = sha.finish();
  data.append(reinterpret_cast<const char*>(sum.data()), sum.size());

  std::string tmp = file.string() + ".tmp-XXXXXX";
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    return (err == EACCES ? permission_denied
                          : internal_error)("cannot write " + tmp + ": " + errno_text(err));
  }
  auto fail = [&](std::string_view what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return internal_error(std::string(what) + " " + tmp + ": " + errno_text(err));
  };
  for (std::size_t at = 0; at < data.size();) {
    const ssize_t n = ::write(fd.get(), data.data() + at, data.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("cannot write");
    at += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd.get(), 0600) != 0 || ::fsync(fd.get()) != 0) return fail("cannot sync");
  if (::rename(tmp.c_str(), file.c_str()) != 0) return fail("cannot rename");
  Fd dirfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() >= 0) ::fsync(dirfd.get());
  return ok_status();
}

}  // namespace odd::engine
