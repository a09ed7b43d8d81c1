#include "daemon/artifacts.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <system_error>
#include <vector>

#include "daemon/log_hub.hpp"

namespace odd::daemon {

namespace {

constexpr std::size_t kBlock = 512;
constexpr std::size_t kPiece = 64 * 1024;

// width - 1 octal digits and a NUL, as ustar readers expect; values that do not fit are
// clamped (no artifact comes near 8 GiB of one file).
void put_octal(char* field, std::size_t width, std::uint64_t value) {
  field[width - 1] = '\0';
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

std::string ustar_block(std::string_view name, std::string_view prefix, std::uint64_t size,
                        unsigned mode, std::int64_t mtime, char type) {
  std::string block(kBlock, '\0');
  char* h = block.data();
  std::copy(name.begin(), name.end(), h);
  put_octal(h + 100, 8, mode);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, static_cast<std::uint64_t>(std::max<std::int64_t>(mtime, 0)));
  h[156] = type;
  std::copy_n("ustar", 6, h + 257);
  h[263] = '0';
  h[264] = '0';
  std::copy(prefix.begin(), prefix.end(), h + 345);
  std::fill_n(h + 148, 8, ' ');
  unsigned sum = 0;
  for (char c : block) sum += static_cast<unsigned char>(c);
  put_octal(h + 148, 7, sum);
  h[155] = ' ';
  return block;
}

// "<len> path=<name>\n", where <len> counts the whole record including its own digits.
std::string pax_record(std::string_view key, std::string_view value) {
  const std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  std::size_t length = body + 1;
  while (std::to_string(length).size() + body != length) ++length;
  std::string record = std::to_string(length);
  record.append(" ").append(key).append("=").append(value).append("\n");
  return record;
}

std::string padding(std::uint64_t size) {
  const std::size_t rest = static_cast<std::size_t>(size % kBlock);
  return rest == 0 ? std::string() : std::string(kBlock - rest, '\0');
}

struct Entry {
  enum class Kind { kMemory, kLog, kFile, kDirectory };
  Kind kind = Kind::kMemory;
  std::string name;
  std::string data;              // kMemory
  std::filesystem::path source;  // kLog, kFile
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
};

class ArtifactTar final : public ByteCursor {
 public:
  ArtifactTar(asio::any_io_executor executor, LogHub& hub, std::vector<Entry> entries)
      : executor_(std::move(executor)), hub_(hub), entries_(std::move(entries)) {}

  asio::awaitable<Result<std::string>> next() override {
    if (!sized_) {
      for (Entry& entry : entries_) {
        if (entry.kind != Entry::Kind::kLog) continue;
        auto size = co_await measure(entry.source);
        if (!size) co_return size.error();
        entry.size = *size;
      }
      sized_ = true;
    }
    while (index_ < entries_.size()) {
      Entry& entry = entries_[index_];
      if (!header_sent_) {
        header_sent_ = true;
        written_ = 0;
        const bool directory = entry.kind == Entry::Kind::kDirectory;
        std::string header = tar_header(entry.name, directory ? 0 : entry.size,
                                        directory ? 0755 : 0644, entry.mtime);
        if (directory) finish_entry();
        co_return header;
      }
      auto piece = co_await body_piece(entry);
      if (!piece) co_return piece.error();
      if (!piece->empty()) {
        if (written_ + piece->size() > entry.size) {
          co_return internal_error(entry.source.string() + " grew while it was being archived");
        }
        written_ += piece->size();
        co_return std::move(*piece);
      }
      if (written_ != entry.size) {
        co_return internal_error(entry.source.string() + " shrank while it was being archived");
      }
      std::string pad = padding(entry.size);
      finish_entry();
      if (!pad.empty()) co_return pad;
    }
    if (!trailer_sent_) {
      trailer_sent_ = true;
      co_return std::string(2 * kBlock, '\0');
    }
    co_return std::string();
  }

 private:
  void finish_entry() {
    ++index_;
    header_sent_ = false;
    log_.reset();
    file_.close();
  }

  asio::awaitable<Result<std::uint64_t>> measure(const std::filesystem::path& path) {
    auto cursor = open_log_cursor(executor_, hub_, {path}, false);
    if (!cursor) co_return cursor.error();
    std::uint64_t total = 0;
    for (;;) {
      auto piece = co_await (*cursor)->next();
      if (!piece) co_return piece.error();
      if (piece->empty()) break;
      total += piece->size();
    }
    co_return total;
  }

  asio::awaitable<Result<std::string>> body_piece(Entry& entry) {
    switch (entry.kind) {
      case Entry::Kind::kMemory: {
        std::string piece = entry.data.substr(static_cast<std::size_t>(written_), kPiece);
        co_return piece;
      }
      case Entry::Kind::kLog: {
        if (!log_) {
          auto cursor = open_log_cursor(executor_, hub_, {entry.source}, false);
          if (!cursor) co_return cursor.error();
          log_ = std::move(*cursor);
        }
        co_return co_await log_->next();
      }
      case Entry::Kind::kFile: {
        if (!file_.is_open()) {
          file_.open(entry.source, std::ios::binary);
          if (!file_) co_return not_found("cannot read " + entry.source.string());
        }
        std::string piece(kPiece, '\0');
        file_.read(piece.data(), static_cast<std::streamsize>(piece.size()));
        piece.resize(static_cast<std::size_t>(file_.gcount()));
        co_return piece;
      }
      case Entry::Kind::kDirectory:
        break;
    }
    co_return std::string();
  }

  asio::any_io_executor executor_;
  LogHub& hub_;
  std::vector<Entry> entries_;
  bool sized_ = false;
  std::size_t index_ = 0;
  bool header_sent_ = false;
  bool trailer_sent_ = false;
  std::uint64_t written_ = 0;
  std::unique_ptr<ByteCursor> log_;
  std::ifstream file_;
};

std::int64_t mtime_of(const std::filesystem::path& path) {
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(path, ec);
  if (ec) return 0;
  const auto system = std::chrono::file_clock::to_sys(time);
  return std::chrono::duration_cast<std::chrono::seconds>(system.time_since_epoch()).count();
}

}  // namespace

std::string tar_header(std::string_view name, std::uint64_t size, unsigned mode,
                       std::int64_t mtime) {
  const char type = !name.empty() && name.back() == '/' ? '5' : '0';
  if (name.size() <= 100) return ustar_block(name, "", size, mode, mtime, type);
  // Split into prefix/name at a '/' when both parts fit; otherwise a PAX record carries it.
  const std::size_t cut = name.rfind('/', std::min<std::size_t>(name.size() - 1, 155));
  if (cut != std::string_view::npos && cut <= 155 && name.size() - cut - 1 <= 100 &&
      name.size() - cut - 1 > 0) {
    return ustar_block(name.substr(cut + 1), name.substr(0, cut), size, mode, mtime, type);
  }
  const std::string records = pax_record("path", name);
  std::string out = ustar_block("././@PaxHeader", "", records.size(), 0644, mtime, 'x');
  out += records;
  out += padding(records.size());
  out += ustar_block(name.substr(0, 100), "", size, mode, mtime, type);
  return out;
}

Result<std::unique_ptr<ByteCursor>> open_artifacts_tar(asio::any_io_executor executor, LogHub& hub,
                                                       const proto::RunSummary& summary,
                                                       const std::filesystem::path& jobs_dir,
                                                       const std::filesystem::path& files_dir) {
  if (!proto::is_final(summary.state)) {
    return failed_precondition("run " + summary.run_id +
                               " is still running; its artifacts are ready once it ends");
  }
  const std::int64_t finished =
      summary.finished_at ? summary.finished_at->time_since_epoch().count() : 0;
  std::vector<Entry> entries;
  entries.push_back({Entry::Kind::kDirectory, "logs/", {}, {}, 0, finished});
  for (const proto::JobSummary& job : summary.jobs) {
    const std::string folder = "logs/" + job.key + "/";
    entries.push_back({Entry::Kind::kDirectory, folder, {}, {}, 0, finished});
    std::vector<std::filesystem::path> logs;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(jobs_dir / job.key, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > 8 && name.ends_with(".log.zst")) logs.push_back(it->path());
    }
    std::sort(logs.begin(), logs.end());
    for (const auto& log : logs) {
      Entry entry;
      entry.kind = Entry::Kind::kLog;
      entry.name = folder + log.stem().string();  // drops ".zst"
      entry.source = log;
      entry.mtime = mtime_of(log);
      entries.push_back(std::move(entry));
    }
    Entry json;
    json.name = folder + job.container_name.value_or(job.key) + "-summary.json";
    json.data = proto::encode(job).dump(2) + "\n";
    json.size = json.data.size();
    json.mtime = finished;
    entries.push_back(std::move(json));
  }
  Entry aggregate;
  aggregate.name = "logs/aggregate-" + summary.run_id + ".json";
  aggregate.data = proto::encode(summary).dump(2) + "\n";
  aggregate.size = aggregate.data.size();
  aggregate.mtime = finished;
  entries.push_back(std::move(aggregate));

  std::error_code ec;
  if (std::filesystem::is_directory(files_dir, ec)) {
    entries.push_back({Entry::Kind::kDirectory, "logs/files/", {}, {}, 0, finished});
    std::vector<std::filesystem::path> files;
    for (auto it = std::filesystem::recursive_directory_iterator(files_dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) || it->is_directory(ec)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
      Entry entry;
      const std::string relative = path.lexically_relative(files_dir).generic_string();
      entry.mtime = mtime_of(path);
      if (std::filesystem::is_directory(path, ec)) {
        entry.kind = Entry::Kind::kDirectory;
        entry.name = "logs/files/" + relative + "/";
      } else {
        entry.kind = Entry::Kind::kFile;
        entry.name = "logs/files/" + relative;
        entry.source = path;
        entry.size = std::filesystem::file_size(path, ec);
      }
      entries.push_back(std::move(entry));
    }
  }
  return std::unique_ptr<ByteCursor>(
      std::make_unique<ArtifactTar>(std::move(executor), hub, std::move(entries)));
}

}  // namespace odd::daemon
