#include "sshx/channel_stream.hpp"

#include <array>
#include <boost/asio/detached.hpp>
#include <utility>

#include "sshx/channel_handle.hpp"

namespace odd::sshx {

namespace {
constexpr std::size_t kStderrTail = 4096;
}  // namespace

struct ChannelStream::State {
  ChannelHandle channel;
  std::string stderr_tail;
  bool closed = false;

  void keep_stderr(std::string_view bytes) {
    stderr_tail.append(bytes);
    if (stderr_tail.size() > kStderrTail) {
      stderr_tail.erase(0, stderr_tail.size() - kStderrTail);
    }
  }
};

ChannelStream::ChannelStream(std::shared_ptr<State> state) : state_(std::move(state)) {}
ChannelStream::ChannelStream(ChannelStream&&) noexcept = default;
ChannelStream& ChannelStream::operator=(ChannelStream&&) noexcept = default;
ChannelStream::~ChannelStream() = default;

asio::awaitable<Result<ChannelStream>> ChannelStream::open_exec(std::shared_ptr<Session> session,
                                                                std::string command,
                                                                Deadline deadline) {
  auto opened = co_await ChannelHandle::open(session, deadline);
  if (!opened) co_return opened.error();
  auto state = std::make_shared<State>();
  state->channel = std::move(*opened);
  LIBSSH2_CHANNEL* channel = state->channel.get();
  auto started = co_await session->call(
      [&] {
        return libssh2_channel_process_startup(channel, "exec", 4, command.data(),
                                               static_cast<unsigned>(command.size()));
      },
      deadline);
  if (!started) co_return started.error();
  if (*started != 0) co_return session->last_error("starting `" + command + "`");
  co_return ChannelStream(std::move(state));
}

ChannelStream::executor_type ChannelStream::get_executor() const {
  return state_->channel.session().get_executor();
}

bool ChannelStream::is_open() const {
  return state_ && !state_->closed && state_->channel && state_->channel.session().usable();
}

const std::string& ChannelStream::stderr_tail() const { return state_->stderr_tail; }

void ChannelStream::shutdown_send() {
  if (!is_open()) return;
  auto state = state_;
  asio::co_spawn(
      get_executor(),
      [state]() -> asio::awaitable<void> {
        if (state->closed || !state->channel) co_return;
        LIBSSH2_CHANNEL* channel = state->channel.get();
        co_await state->channel.session().call(
            [channel] { return libssh2_channel_send_eof(channel); },
            std::chrono::steady_clock::now() + std::chrono::seconds(10));
      },
      asio::detached);
}

void ChannelStream::close() {
  if (!state_ || state_->closed) return;
  state_->closed = true;
  ChannelHandle released = std::move(state_->channel);
}

asio::awaitable<std::tuple<error_code, std::size_t>> ChannelStream::read_some(
    asio::mutable_buffer buffer) {
  co_return co_await transfer(true, buffer);
}

asio::awaitable<std::tuple<error_code, std::size_t>> ChannelStream::write_some(
    asio::const_buffer buffer) {
  co_return co_await transfer(
      false, asio::mutable_buffer(const_cast<void*>(buffer.data()), buffer.size()));
}

asio::awaitable<std::tuple<error_code, std::size_t>> ChannelStream::transfer(
    bool reading, asio::mutable_buffer buffer) {
  auto state = state_;
  if (!state || state->closed || !state->channel) {
    co_return std::tuple(error_code(asio::error::bad_descriptor), std::size_t{0});
  }
  if (buffer.size() == 0) co_return std::tuple(error_code(), std::size_t{0});
  std::shared_ptr<Session> session = state->channel.session_ptr();
  LIBSSH2_CHANNEL* channel = state->channel.get();
  if (!reading) {
    auto wrote = co_await session->call(
        [&] {
          return libssh2_channel_write_ex(channel, 0, static_cast<const char*>(buffer.data()),
                                          buffer.size());
        },
        Deadline::max());
    if (!wrote) {
      co_return std::tuple(
          error_code(wrote.error().code() == Code::kCancelled ? asio::error::operation_aborted
                                                              : asio::error::broken_pipe),
          std::size_t{0});
    }
    if (*wrote < 0) co_return std::tuple(error_code(asio::error::broken_pipe), std::size_t{0});
    co_return std::tuple(error_code(), static_cast<std::size_t>(*wrote));
  }
  std::array<char, 4096> err_buffer;
  for (;;) {
    if (state->closed || !session->usable()) {
      co_return std::tuple(error_code(asio::error::connection_reset), std::size_t{0});
    }
    const std::uint64_t seen = session->generation();
    const auto n =
        libssh2_channel_read_ex(channel, 0, static_cast<char*>(buffer.data()), buffer.size());
    auto e = libssh2_channel_read_ex(channel, SSH_EXTENDED_DATA_STDERR, err_buffer.data(),
                                     err_buffer.size());
    while (e > 0) {
      state->keep_stderr(std::string_view(err_buffer.data(), static_cast<std::size_t>(e)));
      e = libssh2_channel_read_ex(channel, SSH_EXTENDED_DATA_STDERR, err_buffer.data(),
                                  err_buffer.size());
    }
    session->after_call(seen);
    if (n > 0) co_return std::tuple(error_code(), static_cast<std::size_t>(n));
    if (n == 0) co_return std::tuple(error_code(asio::error::eof), std::size_t{0});
    if (n != LIBSSH2_ERROR_EAGAIN) {
      co_return std::tuple(error_code(asio::error::connection_reset), std::size_t{0});
    }
    if (libssh2_channel_eof(channel) != 0) {
      co_return std::tuple(error_code(asio::error::eof), std::size_t{0});
    }
    Status parked = co_await session->park(seen, Deadline::max(), true);
    if (!parked.ok()) {
      co_return std::tuple(
          error_code(parked.code() == Code::kCancelled ? asio::error::operation_aborted
                                                       : asio::error::connection_reset),
          std::size_t{0});
    }
  }
}

}  // namespace odd::sshx
