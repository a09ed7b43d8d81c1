#pragma once
// ControlServer: oddd's control socket (DESIGN §8): HTTP/1.1 over a Unix socket, one handler per
// route, each calling ControlService. It owns the listening socket and every connection; the
// service is borrowed and must outlive run(). Construct, listen, run and stop on one executor (the
// daemon's I/O strand). Below it, the pure request interpretation it is built on (routing, query
// and submit-body parsing), usable without sockets; tests/fuzz/control_request_fuzz.cpp drives it.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "daemon/control_service.hpp"
#include "proto/api_types.hpp"

namespace odd::daemon {

struct ControlServerOptions {
  std::string socket_path = "/run/odd/oddd.sock";
  std::string socket_group = "odd";  // chown'd to when it exists; empty: left alone
  unsigned socket_mode = 0660;
  std::size_t max_connections = 64;  // served at once; more get 503
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 2 * 1024 * 1024;
  // Bounds waiting for (each read of) a request and writing an ordinary response; streamed
  // responses have none, a follower may wait as long as its run lasts.
  std::chrono::milliseconds idle_timeout{60'000};
};

// Responses: JSON bodies end in "\n"; errors are proto::encode(ApiError) with
// proto::http_status(code), or 405 (with Allow), 413, 431 for what HTTP has its own status for.
// GET /v1/runs answers a JSON array of run objects without jobs; cancel answers {"id"}; a
// detached submit 201 {"id"}. Streams (submit, events, logs, artifacts) are chunked and end with
// "Connection: close": the server keeps a read pending on them to notice the client leaving, so
// a request pipelined behind one is discarded, and a client must not half-close (shutdown its
// sending side) while it waits on one: end of file counts as leaving, and for a waiting submit
// calls submitter_gone. An NDJSON stream whose cursor fails ends with a line {"error": {...}};
// a byte stream (logs, tar) is cut off without its last chunk instead.
class ControlServer {
 public:
  ControlServer(asio::any_io_executor executor, ControlService& service,
                ControlServerOptions options);
  // Stops (see stop()). Connection coroutines keep what they use alive, but the service must
  // outlive them: destroy the server after run() returned.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens on options.socket_path with socket_mode, chown'd to socket_group. A socket
  // file nobody listens on is replaced. failed_precondition when another process answers there,
  // the path is not a socket or its directory is missing; invalid_argument for a path too long
  // for a socket; permission_denied or unavailable for other system errors. Messages name the
  // path. Sets the process umask around bind(): call it before threads that create files start.
  Status listen();
  // Serves an already listening Unix stream socket (systemd socket activation), taking it over.
  // invalid_argument when `fd` is not a listening socket. The file is never unlinked.
  Status adopt(int fd);

  // Accepts and serves connections until stop(), then returns once every connection coroutine
  // has ended. Call once, after listen() or adopt() succeeded. Cancelling it stop()s.
  asio::awaitable<void> run();
  // Stops accepting, closes idle connections, cancels requests and streams in flight (a waiting
  // submitter's run is not cancelled for it: submitter_gone is for clients that leave), and
  // unlinks the socket file if listen() created it. Idempotent.
  void stop();

  // New bounds after a config reload, for requests read from now on (a connection already open
  // keeps its read buffer, sized for the header limit it started with; none is closed).
  void set_limits(std::size_t max_connections, std::size_t max_header_bytes,
                  std::size_t max_body_bytes);

  const std::string& socket_path() const;
  // Connections being served or refused right now.
  std::size_t connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// ---- Request interpretation (pure; no I/O) -------------------------------------------------

enum class Route {
  kVersion,    // GET /v1/version
  kHealth,     // GET /v1/health
  kSubmit,     // POST /v1/runs
  kListRuns,   // GET /v1/runs?state=&limit=
  kGetRun,     // GET /v1/runs/{id}
  kCancelRun,  // POST /v1/runs/{id}/cancel
  kEvents,     // GET /v1/runs/{id}/events?since=&follow=
  kLogs,       // GET /v1/runs/{id}/jobs/{key}/logs?stream=&follow=
  kSummary,    // GET /v1/runs/{id}/summary
  kArtifacts,  // GET /v1/runs/{id}/artifacts
};

// The query parameters of every route, defaults filled in; a route accepts only its own.
struct RequestQuery {
  std::optional<proto::RunState> state;   // list
  std::size_t limit = 50;                 // list: 1..1000
  std::uint64_t since = 0;                // events
  bool follow = false;                    // events, logs: 0|1|true|false
  LogSelect stream = LogSelect::kStdout;  // logs: stdout|stderr|both
};

struct RouteMatch {
  Route route = Route::kVersion;
  std::string run_id;   // {id}, a proto::valid_run_id
  std::string job_key;  // {key}, percent-decoded, not empty
  RequestQuery query;
};

// A request answered without calling the service.
struct Rejection {
  unsigned http_status = 400;
  proto::ApiError error;
  std::string allow;  // the Allow header of a 405: "GET, POST"
};
// Only Routed::value() on a rejection calls it: a broken invariant in the caller.
[[noreturn]] void throw_exception_from_error(const Rejection& rejection,
                                             const boost::source_location& loc);

using Routed = boost::system::result<RouteMatch, Rejection>;

// Matches `method` and the request `target` (origin form: path and query) against the route
// table. Rejections: 404 unknown path or a run id that is not valid_run_id ("no run <id>"),
// 405 known path with another method (Allow set), 400 a bad target or query parameter (the
// message names the parameter and what it accepts).
Routed route(std::string_view method, std::string_view target);

// The body of POST /v1/runs. invalid_argument: a Content-Type other than application/json;
// invalid JSON (the message names the byte offset); JSON nested deeper than the spec allows or an
// object with too many keys; or decode_submit_request's error naming the key path.
Result<proto::SubmitRequest> parse_submit_body(std::string_view content_type,
                                               std::string_view body);

}  // namespace odd::daemon
