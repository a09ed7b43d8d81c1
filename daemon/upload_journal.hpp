#pragma once
// UploadJournal: the uploads to one host that may have left temporary files there, noted in
// state_dir/uploads/<host>/<tag>.json. An upload is noted before it starts, under a new tag that
// names its temporary files (`.NAME.odd-tmp-<tag>`). Once it finishes on an intact connection,
// which removed its own temporaries, the note goes. Otherwise the upload waits for a sweep
// (sshx::remove_temporaries on the host's next connection), and so do the notes an earlier
// daemon left. One journal per host name for the daemon's life, shared by the host's instances
// across reloads, so a new instance never sweeps an upload still running in an old one.
// Notes are replaced atomically but not fsync'd: they must outlive the daemon, and the I/O
// thread must not wait for the disk; after a crash of the whole machine a hidden temporary file
// may stay on the host. Blocking and small; one thread at a time.

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace odd::daemon {

class UploadJournal {
 public:
  struct Upload {
    std::string tag;   // 16 hex digits
    std::string dest;  // the upload's remote target, as given to sshx::upload
    friend bool operator==(const Upload&, const Upload&) = default;
  };

  explicit UploadJournal(std::filesystem::path dir);

  // Notes an upload to `dest` under a new tag and returns the tag. permission_denied or internal
  // naming the file when it cannot be written.
  Result<std::string> begin(const std::string& dest);
  // The upload `tag` has finished. `intact`: its connection lasted, so its temporaries are gone
  // and so goes its note; otherwise it waits for a sweep.
  Status finish(const std::string& tag, bool intact);

  // Whether uploads wait for a sweep. The first call (or take) adds the notes on disk that no
  // upload of this journal owns: an earlier daemon's. Notes that cannot be read or parsed are
  // skipped and described (path and why) in `unreadable`.
  bool has_left_behind(std::vector<std::string>* unreadable = nullptr);
  // Takes the uploads waiting for a sweep; give each back to swept() or put_back().
  std::vector<Upload> take_left_behind(std::vector<std::string>* unreadable = nullptr);
  // The sweep of `tag` is over, done or given up: its note goes.
  Status swept(const std::string& tag);
  // The sweep of `uploads` did not happen; they wait for the next.
  void put_back(std::vector<Upload> uploads);

 private:
  void load(std::vector<std::string>* unreadable);
  Status forget(const std::string& tag);

  std::filesystem::path dir_;
  std::mt19937_64 random_;
  std::map<std::string, std::string> running_;  // tag -> dest
  std::vector<Upload> left_behind_;
  bool loaded_ = false;
};

// The host directories under `uploads_dir` (state_dir/uploads) that hold notes although
// `configured` does not name the host, with their number of notes: the temporaries of those
// uploads stay on the host until it is configured again. A directory that cannot be listed counts
// as empty.
std::map<std::string, std::size_t> unconfigured_uploads(const std::filesystem::path& uploads_dir,
                                                        const std::set<std::string>& configured);

}  // namespace odd::daemon
