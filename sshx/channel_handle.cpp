#include "sshx/channel_handle.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <utility>

namespace odd::sshx {

namespace {

constexpr std::chrono::seconds kDetachedCloseTimeout{10};

asio::awaitable<void> close_detached(ChannelHandle handle) {
  co_await handle.close(std::chrono::steady_clock::now() + kDetachedCloseTimeout);
}

}  // namespace

ChannelHandle::ChannelHandle(std::shared_ptr<Session> session, LIBSSH2_CHANNEL* channel)
    : session_(std::move(session)), channel_(channel) {
  if (channel_ != nullptr) session_->channel_opened();
}

ChannelHandle::ChannelHandle(ChannelHandle&& other) noexcept
    : session_(std::move(other.session_)),
      channel_(std::exchange(other.channel_, nullptr)),
      closed_(other.closed_) {}

ChannelHandle& ChannelHandle::operator=(ChannelHandle&& other) noexcept {
  if (this != &other) {
    abandon();
    session_ = std::move(other.session_);
    channel_ = std::exchange(other.channel_, nullptr);
    closed_ = other.closed_;
  }
  return *this;
}

ChannelHandle::~ChannelHandle() {
  if (channel_ == nullptr) return;
  if (session_->usable() && !closed_) {
    auto executor = session_->get_executor();
    asio::co_spawn(executor, close_detached(std::move(*this)), asio::detached);
    return;
  }
  abandon();
}

asio::awaitable<Result<ChannelHandle>> ChannelHandle::open(std::shared_ptr<Session> session,
                                                           Deadline deadline) {
  LIBSSH2_SESSION* raw = session->raw();
  auto opened =
      co_await session->call([raw] { return libssh2_channel_open_session(raw); }, deadline);
  if (!opened) co_return opened.error();
  if (*opened == nullptr) co_return session->last_error("opening a channel");
  co_return ChannelHandle(std::move(session), *opened);
}

asio::awaitable<Status> ChannelHandle::close(Deadline deadline) {
  if (channel_ == nullptr || closed_) co_return ok_status();
  LIBSSH2_CHANNEL* channel = channel_;
  std::shared_ptr<Session> session = session_;
  auto closed =
      co_await session->call([channel] { return libssh2_channel_close(channel); }, deadline);
  if (!closed) co_return closed.error();
  auto waited =
      co_await session->call([channel] { return libssh2_channel_wait_closed(channel); }, deadline);
  if (!waited) co_return waited.error();
  closed_ = true;
  co_return ok_status();
}

void ChannelHandle::abandon() {
  if (channel_ == nullptr) return;
  // A broken session cannot send a close; libssh2 frees the channel's memory with the session.
  // A closed channel frees without sending anything, so without EAGAIN.
  if (session_->usable() || closed_) {
    libssh2_channel_free(channel_);
  }
  channel_ = nullptr;
  session_->channel_closed();
}

}  // namespace odd::sshx
