#pragma once
// ChannelStream: an exec channel of a Session that behaves as an Asio AsyncStream
// (async_read_some / async_write_some), for tunnelling a protocol such as dockerd's HTTP through
// `docker system dial-stdio` on the remote host (DESIGN §2). Owns its channel and shares the
// session. Use from the session's strand; operations honour per-operation cancellation, and a
// channel whose operation was cancelled mid-call is closed (with its session: see Session::call).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <tuple>

#include "common/status.hpp"
#include "sshx/session.hpp"

namespace odd::sshx {

using boost::system::error_code;

class ChannelStream {
 public:
  using executor_type = asio::any_io_executor;

  // Opens a session channel on `session` and execs `command` on it. Errors name the host:
  // unavailable (session broke, channel refused — e.g. MaxSessions reached), deadline_exceeded.
  static asio::awaitable<Result<ChannelStream>> open_exec(std::shared_ptr<Session> session,
                                                          std::string command, Deadline deadline);

  ChannelStream(ChannelStream&&) noexcept;
  ChannelStream& operator=(ChannelStream&&) noexcept;
  ~ChannelStream();

  executor_type get_executor() const;
  bool is_open() const;
  // Sends EOF: the remote command sees the end of its stdin; reading goes on.
  void shutdown_send();
  // Closes the channel (without waiting for the peer) and aborts nothing else. Idempotent.
  void close();

  // The coroutine forms: read at least one byte of stdout (asio::error::eof at its end);
  // write all of `buffer`. stderr of the remote command is drained and kept (last 4 KiB) so it
  // can name why a tunnel ended.
  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer buffer);
  asio::awaitable<std::tuple<error_code, std::size_t>> write_some(asio::const_buffer buffer);
  const std::string& stderr_tail() const;

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return initiate(true, first_mutable(buffers), std::forward<Token>(token));
  }
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return initiate(false, first_const(buffers), std::forward<Token>(token));
  }

 private:
  struct State;
  explicit ChannelStream(std::shared_ptr<State> state);

  template <class Seq>
  static asio::mutable_buffer first_mutable(const Seq& buffers) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      if (asio::mutable_buffer b(*it); b.size() > 0) return b;
    }
    return {};
  }
  template <class Seq>
  static asio::const_buffer first_const(const Seq& buffers) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      if (asio::const_buffer b(*it); b.size() > 0) return b;
    }
    return {};
  }

  asio::awaitable<std::tuple<error_code, std::size_t>> transfer(bool reading,
                                                                asio::mutable_buffer buffer);

  template <class Token>
  auto initiate(bool reading, asio::mutable_buffer buffer, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this, reading, buffer](auto handler) {
          auto slot = asio::get_associated_cancellation_slot(handler);
          asio::co_spawn(get_executor(), transfer(reading, buffer),
                         asio::bind_cancellation_slot(
                             slot, [h = std::move(handler)](
                                       std::exception_ptr error,
                                       std::tuple<error_code, std::size_t> result) mutable {
                               if (error) {
                                 std::move(h)(asio::error::make_error_code(asio::error::fault),
                                              std::size_t{0});
                                 return;
                               }
                               std::move(h)(std::get<0>(result), std::get<1>(result));
                             }));
        },
        token);
  }
  template <class Token>
  auto initiate(bool reading, asio::const_buffer buffer, Token&& token) {
    return initiate(
        reading,
        asio::mutable_buffer(const_cast<void*>(buffer.data()), buffer.size()),  // only read from
        std::forward<Token>(token));
  }

  std::shared_ptr<State> state_;
};

}  // namespace odd::sshx
