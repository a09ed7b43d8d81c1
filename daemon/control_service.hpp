#pragma once
// ControlService: what the control server (daemon/control_server) asks of the daemon, one call
// per route of DESIGN §8. RunManager implements it; the server's tests use a fake. Everything is
// called on the daemon's I/O strand. Errors are Status values; the server turns them into
// {"error": {"code", "message", "path"}} with proto::http_status(code).

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "proto/api_types.hpp"

namespace odd::daemon {

namespace asio = boost::asio;

// A run's events from a sequence number on: stored ones first, then live ones as they happen.
class EventCursor {
 public:
  virtual ~EventCursor() = default;
  // The next event; std::nullopt at the end: when not following, after the last stored event;
  // when following, once the run is final and every event was delivered. cancelled when the
  // caller is cancelled.
  virtual asio::awaitable<Result<std::optional<proto::Event>>> next() = 0;
};

// Bytes of a stored and, when following, still growing log (already decompressed).
class ByteCursor {
 public:
  virtual ~ByteCursor() = default;
  // The next piece; an empty string at the end (for a follower: the writer closed the log and
  // everything was read). Pieces are at most about 64 KiB.
  virtual asio::awaitable<Result<std::string>> next() = 0;
};

enum class LogSelect { kStdout, kStderr, kBoth };

// A submitted run as the submitter sees it.
struct Submitted {
  std::string run_id;
  // Set unless the request was detached: the run's events from seq 0, following.
  std::unique_ptr<EventCursor> events;
};

class ControlService {
 public:
  virtual ~ControlService() = default;

  // GET /v1/version: {"version", "api_version", "docker": {"version", "api_version"} or null}.
  virtual asio::awaitable<Result<proto::Json>> version() = 0;
  // GET /v1/health: {"docker": {"reachable", "error"}, "hosts": {...}}.
  virtual asio::awaitable<Result<proto::Json>> health() = 0;

  // POST /v1/runs. invalid_argument for a bad spec or request, its message starting with the
  // spec path or body key at fault (the server reports proto::spec_error_path of it as "path"). The
  // run starts at once (queued if the daemon's cap is reached).
  virtual asio::awaitable<Result<Submitted>> submit(proto::SubmitRequest request,
                                                    proto::Caller caller) = 0;
  // Called when the connection of a waiting (not detached) submitter closes before its run
  // ended: cancels the run, with `reason` recorded.
  virtual void submitter_gone(const std::string& run_id, const std::string& reason) = 0;

  // GET /v1/runs?state=&limit=: newest first; jobs left out.
  virtual Result<std::vector<proto::RunInfo>> list_runs(std::optional<proto::RunState> state,
                                                        std::size_t limit) = 0;
  // GET /v1/runs/{id}; not_found naming the id.
  virtual Result<proto::RunInfo> get_run(const std::string& run_id) = 0;
  // POST /v1/runs/{id}/cancel; ok for a run already final (nothing to do); not_found.
  virtual Status cancel_run(const std::string& run_id) = 0;
  // GET /v1/runs/{id}/summary; not_found, or failed_precondition before the run has one.
  virtual Result<proto::RunSummary> summary(const std::string& run_id) = 0;
  // GET /v1/runs/{id}/events?since=N&follow=1.
  virtual Result<std::unique_ptr<EventCursor>> events(const std::string& run_id,
                                                      std::uint64_t since, bool follow) = 0;
  // GET /v1/runs/{id}/jobs/{key}/logs?stream=&follow=1: the job's latest attempt's log; `both`
  // interleaves stdout and stderr pieces in the order they were stored. not_found naming the run
  // or the job key (listing the run's keys).
  virtual Result<std::unique_ptr<ByteCursor>> logs(const std::string& run_id,
                                                   const std::string& job_key, LogSelect select,
                                                   bool follow) = 0;
  // GET /v1/runs/{id}/artifacts: a tar stream (DESIGN §8 layout).
  virtual Result<std::unique_ptr<ByteCursor>> artifacts(const std::string& run_id) = 0;
};

}  // namespace odd::daemon
