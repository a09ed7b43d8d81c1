#pragma once
// Pool: the SSH sessions to one host (DESIGN §3). A lease is one channel's worth of a session:
// sessions carry at most `channels_per_session` leases at once (under the server's MaxSessions),
// at most `max_sessions` sessions are open, new connections are rate-limited and retried with
// backoff, broken sessions are dropped, idle ones closed after `idle_timeout`. Knows nothing of
// runs. Use from one strand.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "sshx/session.hpp"

namespace odd::sshx {

struct PoolOptions {
  int max_sessions = 4;
  int channels_per_session = 8;  // sshd's MaxSessions is 10 by default; one is kept for kill
  Millis idle_timeout{60'000};
  Millis min_connect_interval{100};  // between new connections (sshd MaxStartups)
  int connect_attempts = 3;          // per acquire, with backoff from `connect_backoff`
  Millis connect_backoff{500};
};

// The pool's state for health reports.
struct PoolState {
  enum class Kind { kIdle, kConnected, kFailing } kind = Kind::kIdle;
  int sessions = 0;   // open and usable
  int leases = 0;     // held now
  std::string error;  // the last connect failure while failing
};

class Pool;

// One held channel slot on a usable session; returned to the pool on destruction.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  ~Lease();
  const std::shared_ptr<Session>& session() const { return session_; }

 private:
  friend class Pool;
  Lease(std::weak_ptr<Pool> pool, std::shared_ptr<Session> session);
  void release();
  std::weak_ptr<Pool> pool_;
  std::shared_ptr<Session> session_;
};

class Pool : public std::enable_shared_from_this<Pool> {
 public:
  static std::shared_ptr<Pool> create(asio::any_io_executor executor, SessionOptions session,
                                      PoolOptions options);
  ~Pool();

  // A lease on a usable session with a free channel slot, connecting when needed. Waits for a
  // slot when all are taken. Errors: the last connect failure (see Session::connect) once
  // `connect_attempts` failed, deadline_exceeded past `deadline`, cancelled.
  asio::awaitable<Result<Lease>> acquire(Deadline deadline);

  PoolState state() const;
  const SessionOptions& session_options() const { return session_; }
  // Closes every session; later acquires fail with unavailable. Outstanding leases stay valid
  // until released but their sessions are closed.
  void close();

 private:
  struct Impl;
  friend class Lease;
  Pool(asio::any_io_executor executor, SessionOptions session, PoolOptions options);
  void release(const std::shared_ptr<Session>& session);

  SessionOptions session_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace odd::sshx
