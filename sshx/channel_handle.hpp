#pragma once
// ChannelHandle: owns one LIBSSH2_CHANNEL and a share of its Session, and counts it in the
// session's open channels. close() ends it politely (close, wait for the peer); a handle
// destroyed without close() finishes on a detached coroutine with its own deadline. Internal to
// sshx; use from the session's strand.

#include <libssh2.h>

#include <boost/asio/awaitable.hpp>
#include <memory>

#include "common/status.hpp"
#include "sshx/session.hpp"

namespace odd::sshx {

class ChannelHandle {
 public:
  ChannelHandle() = default;
  ChannelHandle(std::shared_ptr<Session> session, LIBSSH2_CHANNEL* channel);
  ChannelHandle(ChannelHandle&& other) noexcept;
  ChannelHandle& operator=(ChannelHandle&& other) noexcept;
  ~ChannelHandle();

  // Opens a session channel. unavailable or failed_precondition (e.g. the server's MaxSessions)
  // naming the host; deadline_exceeded; cancelled.
  static asio::awaitable<Result<ChannelHandle>> open(std::shared_ptr<Session> session,
                                                     Deadline deadline);

  LIBSSH2_CHANNEL* get() const { return channel_; }
  Session& session() const { return *session_; }
  const std::shared_ptr<Session>& session_ptr() const { return session_; }
  explicit operator bool() const { return channel_ != nullptr; }

  // Closes the channel and waits for the peer's close, so its exit status is known; the channel
  // is freed with the handle. Errors only when the session broke or the deadline passed.
  asio::awaitable<Status> close(Deadline deadline);
  // Frees the channel without a polite close (the session is broken or being discarded).
  void abandon();

 private:
  std::shared_ptr<Session> session_;
  LIBSSH2_CHANNEL* channel_ = nullptr;
  bool closed_ = false;
};

}  // namespace odd::sshx
