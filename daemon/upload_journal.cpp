#include "daemon/upload_journal.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

#include "daemon/files.hpp"
#include "proto/api_types.hpp"

namespace odd::daemon {

namespace {

namespace fs = std::filesystem;

constexpr int kFormat = 1;
constexpr std::string_view kSuffix = ".json";
constexpr std::size_t kTagLength = 16;

// The tag of the note `file`, or nothing if the file is not one.
std::optional<std::string> note_tag(const fs::path& file) {
  const std::string name = file.filename().native();
  if (!name.ends_with(kSuffix)) return std::nullopt;
  std::string tag = name.substr(0, name.size() - kSuffix.size());
  if (tag.size() != kTagLength || tag.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return std::nullopt;
  }
  return tag;
}

}  // namespace

UploadJournal::UploadJournal(fs::path dir)
    : dir_(std::move(dir)), random_(std::random_device{}()) {}

Result<std::string> UploadJournal::begin(const std::string& dest) {
  if (Status made = make_dirs(dir_); !made.ok()) return made;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string tag;
  std::uint64_t bits = random_();
  for (std::size_t i = 0; i < kTagLength; ++i, bits >>= 4) tag.push_back(kHex[bits & 15]);
  const proto::Json note = {{"format", kFormat}, {"dest", dest}};
  const fs::path file = dir_ / (tag + std::string(kSuffix));
  if (Status written = write_file_atomic(file, note.dump() + "\n", 0640, Sync::kNo);
      !written.ok()) {
    return written;
  }
  running_.emplace(tag, dest);
  return tag;
}

Status UploadJournal::finish(const std::string& tag, bool intact) {
  auto it = running_.find(tag);
  if (it == running_.end()) return ok_status();
  std::string dest = std::move(it->second);
  running_.erase(it);
  if (intact) return forget(tag);
  left_behind_.push_back({tag, std::move(dest)});
  return ok_status();
}

bool UploadJournal::has_left_behind(std::vector<std::string>* unreadable) {
  load(unreadable);
  return !left_behind_.empty();
}

std::vector<UploadJournal::Upload> UploadJournal::take_left_behind(
    std::vector<std::string>* unreadable) {
  load(unreadable);
  return std::exchange(left_behind_, {});
}

Status UploadJournal::swept(const std::string& tag) { return forget(tag); }

void UploadJournal::put_back(std::vector<Upload> uploads) {
  for (Upload& upload : uploads) left_behind_.push_back(std::move(upload));
}

void UploadJournal::load(std::vector<std::string>* unreadable) {
  if (loaded_) return;
  loaded_ = true;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    const std::optional<std::string> found = note_tag(entry.path());
    if (!found || running_.contains(*found)) continue;
    const std::string& tag = *found;
    if (std::any_of(left_behind_.begin(), left_behind_.end(),
                    [&tag](const Upload& u) { return u.tag == tag; })) {
      continue;
    }
    auto text = read_file(entry.path());
    std::string problem;
    if (!text) {
      problem = text.error().message();
    } else {
      const proto::Json note = proto::Json::parse(*text, nullptr, false);
      if (note.is_object() && note.contains("format") && note["format"] == kFormat &&
          note.contains("dest") && note["dest"].is_string()) {
        left_behind_.push_back({tag, note["dest"].get<std::string>()});
        continue;
      }
      problem = entry.path().native() + ": not an upload note of format " + std::to_string(kFormat);
    }
    if (unreadable != nullptr) unreadable->push_back(std::move(problem));
  }
  if (ec && ec != std::errc::no_such_file_or_directory && unreadable != nullptr) {
    unreadable->push_back(dir_.native() + ": " + ec.message());
  }
}

Status UploadJournal::forget(const std::string& tag) {
  const fs::path file = dir_ / (tag + std::string(kSuffix));
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return errno_status(errno, "removing " + file.native());
  }
  return ok_status();
}

std::map<std::string, std::size_t> unconfigured_uploads(const fs::path& uploads_dir,
                                                        const std::set<std::string>& configured) {
  std::map<std::string, std::size_t> found;
  std::error_code ec;
  for (fs::directory_iterator it(uploads_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().native();
    std::error_code host_ec;
    if (configured.contains(name) || !it->is_directory(host_ec)) continue;
    std::size_t notes = 0;
    for (fs::directory_iterator note(it->path(), host_ec); !host_ec && note != end;
         note.increment(host_ec)) {
      if (note_tag(note->path())) ++notes;
    }
    if (notes > 0) found.emplace(name, notes);
  }
  return found;
}

}  // namespace odd::daemon
