#pragma once
// Session: one SSH connection to one host over libssh2 in non-blocking mode, driven by Asio
// (DESIGN §3). Owns the TCP socket and the LIBSSH2_SESSION. Every libssh2 call on it goes
// through call(), which parks the caller on the session's single driver while libssh2 says
// EAGAIN. A session whose call failed at the transport, timed out or was cancelled mid-call is
// broken: usable() turns false and it is never reused. Use from one strand (the daemon's I/O
// strand); shared_ptr ownership so channels and streams can keep it alive.

#include <libssh2.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "common/status.hpp"

namespace odd::sshx {

namespace asio = boost::asio;
using Millis = std::chrono::milliseconds;
using Deadline = std::chrono::steady_clock::time_point;

// Where and as whom to connect. Exactly one of `identity` and `agent` is set.
struct SessionOptions {
  std::string name;  // how errors name the host: "tester1"
  std::string address;
  std::uint16_t port = 22;
  std::string user;
  std::optional<std::filesystem::path> identity;  // private key file (ed25519 or ecdsa)
  std::optional<std::string> passphrase;          // of `identity`, when it has one
  bool agent = false;                             // authenticate through $SSH_AUTH_SOCK
  std::filesystem::path known_hosts;              // strict: unknown or changed keys refused
  Millis connect_timeout{10'000};                 // TCP connect, handshake and auth together
  Millis keepalive_interval{15'000};
  int keepalive_count = 3;  // dead after interval × count without an answer
};

// "tester1 (10.0.0.85:22)": how every error about a host names it.
std::string describe_host(const SessionOptions& options);

class Session : public std::enable_shared_from_this<Session> {
 public:
  struct Driver;  // the socket and the state of the one driver; internal

  // Connects, checks the host key against options.known_hosts and authenticates, all within
  // options.connect_timeout. Errors name the host: unavailable (refused, unreachable, reset),
  // deadline_exceeded, permission_denied (unknown host key, changed host key — with key type and
  // SHA256 fingerprint —, no key accepted, key unreadable, agent unreachable), invalid_argument
  // (an RSA key or an unreadable known_hosts file), cancelled.
  static asio::awaitable<Result<std::shared_ptr<Session>>> connect(asio::any_io_executor executor,
                                                                   SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const SessionOptions& options() const { return options_; }
  const std::string& describe() const { return description_; }
  asio::any_io_executor get_executor() const { return executor_; }
  LIBSSH2_SESSION* raw() const { return session_; }

  // False once the session broke (transport error, keepalive found the peer dead, a call timed
  // out or was cancelled mid-call) or was closed.
  bool usable() const { return !broken_ && session_ != nullptr; }
  // Breaks the session if its peer closed or reset the connection while nobody used it (the
  // socket reports hang-up or an error, without a read); returns usable(). Pools call it before
  // handing out a session.
  bool check_connection();
  // The first error that broke the session, with the host named; ok while usable.
  const Status& failure() const { return failure_; }
  // Marks the session broken with `why` (first reason wins) and wakes every parked caller.
  void mark_broken(Status why);
  // Shuts the connection down (best-effort SSH disconnect, then the socket); parked callers
  // complete with unavailable. libssh2's session is freed with the Session, after every channel
  // that shares it. Idempotent.
  void close();

  // Channels currently open on this session; the pool keeps it under the server's MaxSessions.
  int open_channels() const { return open_channels_; }
  void channel_opened() { ++open_channels_; }
  void channel_closed() { --open_channels_; }

  // Runs `fn` (a libssh2 call on this session) until it does not report EAGAIN, parking on the
  // driver in between; `fn` is repeated with the same arguments. `fn` returns an integer (EAGAIN
  // is LIBSSH2_ERROR_EAGAIN) or a pointer (EAGAIN is nullptr with the session's last errno
  // LIBSSH2_ERROR_EAGAIN). Returns fn's final value; deadline_exceeded past `deadline`,
  // cancelled when the awaiting coroutine is cancelled, unavailable when the session broke —
  // the first two also break the session, since libssh2 may be mid-packet.
  // `resumable`: abandoning `fn` between two EAGAINs leaves libssh2 consistent (a channel read),
  // so a deadline or cancellation does not break the session.
  template <class Fn>
  asio::awaitable<Result<std::invoke_result_t<Fn&>>> call(Fn fn, Deadline deadline,
                                                          bool resumable = false);

  // libssh2's last error on this session as a Status naming the host and `what` was attempted:
  // "tester1 (10.0.0.85:22): opening a channel: <libssh2 message>". A socket/timeout error code
  // becomes unavailable, LIBSSH2_ERROR_CHANNEL_* failed_precondition, others internal.
  Status last_error(std::string_view what) const;

  // Whether bytes from the peer wait in the socket, unread by libssh2.
  bool input_pending() const;

  // Grows whenever bytes arrive or the socket becomes ready: a parked call may now succeed.
  std::uint64_t generation() const { return generation_; }

  // Parks the caller until the driver reports progress after `seen` (returns ok), `deadline`
  // passes, the awaiting coroutine is cancelled or the session breaks; the last three break the
  // session unless `resumable`. For loops that poll several libssh2 calls at once (exec's
  // stdout and stderr); call() is the usual way.
  asio::awaitable<Status> park(std::uint64_t seen, Deadline deadline, bool resumable);
  // Wakes parked callers when a call made since `seen` received bytes. Every libssh2 call made
  // outside call() must be followed by it.
  void after_call(std::uint64_t seen);

 private:
  friend struct DriverLoop;
  Session(asio::any_io_executor executor, SessionOptions options);
  asio::awaitable<Status> authenticate(Deadline deadline);
  // Why the handshake failed (`why` when the call itself failed), naming a peer that sent no
  // SSH banner as probably not an SSH server.
  Status handshake_error(Status why) const;

  static bool would_block(LIBSSH2_SESSION*, long rc) { return rc == LIBSSH2_ERROR_EAGAIN; }
  template <class T>
  static bool would_block(LIBSSH2_SESSION* session, T* pointer) {
    return pointer == nullptr && libssh2_session_last_errno(session) == LIBSSH2_ERROR_EAGAIN;
  }

  friend struct SessionAccess;
  // Breaks the session because its connection failed (`why`: what the socket said).
  void lose_connection(std::string_view why);

  asio::any_io_executor executor_;
  SessionOptions options_;
  std::string description_;
  LIBSSH2_SESSION* session_ = nullptr;
  std::shared_ptr<Driver> driver_;  // shared with the driver coroutine, which may outlive us
  bool broken_ = false;
  Status failure_;
  std::string lost_;  // why the connection failed, once it did
  int open_channels_ = 0;
  std::uint64_t generation_ = 0;
};

template <class Fn>
asio::awaitable<Result<std::invoke_result_t<Fn&>>> Session::call(Fn fn, Deadline deadline,
                                                                 bool resumable) {
  for (;;) {
    if (!usable()) {
      if (broken_) co_return failure_;
      co_return unavailable(description_ + ": the session is closed");
    }
    const std::uint64_t seen = generation_;
    auto result = fn();
    bool blocked = false;
    if constexpr (std::is_pointer_v<decltype(result)>) {
      blocked = would_block(session_, result);
    } else {
      blocked = would_block(session_, static_cast<long>(result));
    }
    after_call(seen);
    if (!blocked) co_return result;
    if (Status parked = co_await park(seen, deadline, resumable); !parked.ok()) co_return parked;
  }
}

}  // namespace odd::sshx
