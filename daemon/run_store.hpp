#pragma once
// RunStore: the daemon's state on disk (DESIGN §9) under its state_dir: runs/<id>/run.json,
// events.ndjson, summary.json, jobs/<key>/{summary.json,<container>.cid}, artifacts/, and
// cache/<name>/, plus the daemon's instance id. The append-only event log is the source of truth;
// run.json and the summaries are snapshots replaced atomically (temp file, fsync, rename, fsync
// of the directory). Only run.json carries a format version: the summaries' JSON is a public
// contract with exactly the keys of DESIGN §9. Everything is synchronous and blocking (the
// callers choose the thread); one thread at a time per RunStore and per EventLog. Directories are
// created 0750, files 0640.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "daemon/config.hpp"
#include "proto/api_types.hpp"

namespace odd::daemon {

// run.json: what the daemon needs to resume or show a run. Secrets never appear in it.
struct RunRecord {
  static constexpr int kFormat = 1;
  int format = kFormat;
  proto::RunInfo info;    // info.id is the run id
  proto::Json spec;       // the spec as submitted, when it came as an object; else null
  std::string spec_text;  // the spec as submitted, when it came as text; else ""
  proto::OutputMap vars;  // the submitted vars
  std::string workdir;    // the caller's working directory
  bool detach = false;
  std::optional<std::string> error;  // why the run failed, when the daemon knows
  friend bool operator==(const RunRecord&, const RunRecord&) = default;
};

// The append side of one run's events.ndjson: one line per event, written with one write(2), so
// a crash loses at most a torn last line. Opening truncates such a line. Owned by the scheduler.
class EventLog {
 public:
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends `event` as one NDJSON line (proto::encode). invalid_argument when its seq is not
  // greater than last_seq(); internal (or permission_denied) for an I/O error, after which the
  // file is as it was before the call.
  Status append(const proto::Event& event);
  // fsync: after it returns ok, every appended event survives a crash. internal on failure.
  Status sync();
  // The seq of the last event in the log; 0 when it is empty.
  std::uint64_t last_seq() const { return last_seq_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  friend class RunStore;
  EventLog(int fd, std::filesystem::path path, std::uint64_t size, std::uint64_t last_seq);

  int fd_;
  std::filesystem::path path_;
  std::uint64_t size_;
  std::uint64_t last_seq_;
};

class RunStore {
 public:
  // Creates state_dir, runs/ and cache/ as needed, finishes the prunes and creates a crash
  // interrupted, and keeps the daemon's instance id in state_dir/instance-id (16 hex digits, made
  // once). permission_denied, failed_precondition or internal naming the directory when it cannot
  // be created or written; failed_precondition when instance-id is corrupt.
  static Result<std::unique_ptr<RunStore>> open(const std::filesystem::path& state_dir);

  const std::filesystem::path& state_dir() const { return state_dir_; }
  const std::string& instance_id() const { return instance_id_; }

  // Paths. invalid_argument for a malformed run id, job key or cache name (none of them can name
  // anything outside the state dir). run_dir and artifacts_dir do not create anything; job_dir
  // and cache_dir create the directory on demand (internal on an I/O error).
  Result<std::filesystem::path> run_dir(std::string_view id) const;
  Result<std::filesystem::path> artifacts_dir(std::string_view id) const;
  Result<std::filesystem::path> job_dir(std::string_view id, std::string_view key) const;
  // NAME: [A-Za-z0-9][A-Za-z0-9_.-]*, no "..".
  Result<std::filesystem::path> cache_dir(std::string_view name) const;

  // Makes runs/<id>/ with jobs/, artifacts/, an empty events.ndjson and run.json, built aside and
  // renamed into place; already_exists when the run does; invalid_argument for a malformed id.
  Status create_run(const RunRecord& record);
  // Replaces run.json atomically; not_found when the run does not exist.
  Status write_run(const RunRecord& record);
  // not_found naming the id; failed_precondition for an unknown format; internal when run.json
  // is unreadable or corrupt (the message names the file).
  Result<RunRecord> load_run(std::string_view id) const;
  // Every stored run's id, newest first (ids sort by time). Other names under runs/ are ignored.
  Result<std::vector<std::string>> list_run_ids() const;

  // Opens runs/<id>/events.ndjson for appending (creating it), truncating a torn last line.
  // not_found when the run does not exist; internal for an I/O error or a corrupt last line.
  Result<std::unique_ptr<EventLog>> open_event_log(std::string_view id) const;
  // The stored events with seq >= from_seq, in order. A torn last line (no newline) is ignored;
  // a corrupt complete line is internal naming the file and line number. not_found: no such run.
  Result<std::vector<proto::Event>> read_events(std::string_view id, std::uint64_t from_seq) const;

  // runs/<id>/jobs/<summary.key>/summary.json and runs/<id>/summary.json: proto::encode of the
  // summary, replaced atomically. not_found when the run does not exist.
  Status write_job_summary(std::string_view id, const proto::JobSummary& summary);
  Status write_run_summary(std::string_view id, const proto::RunSummary& summary);
  // not_found when the run does not exist; failed_precondition when it has no such summary yet;
  // internal when the file is corrupt.
  Result<proto::JobSummary> load_job_summary(std::string_view id, std::string_view key) const;
  Result<proto::RunSummary> load_run_summary(std::string_view id) const;
  // runs/<id>/jobs/<key>/<container_name>.cid holding the container id (as docker's --cidfile).
  Status write_cid(std::string_view id, std::string_view key, std::string_view container_name,
                   std::string_view container_id);

  // Removes the runs beyond the newest policy.runs (kept ones count too) and those created more
  // than policy.days before `now` (by the time in their id), never one whose id is in `keep`
  // (the active runs). Returns how many were removed; internal on an I/O error (runs removed
  // until then stay removed).
  Result<std::size_t> prune(const RetentionPolicy& policy,
                            std::chrono::system_clock::time_point now,
                            const std::set<std::string>& keep);

 private:
  explicit RunStore(std::filesystem::path state_dir) : state_dir_(std::move(state_dir)) {}
  Result<std::filesystem::path> existing_run_dir(std::string_view id) const;

  std::filesystem::path state_dir_;
  std::string instance_id_;
};

}  // namespace odd::daemon
