#pragma once
// Running blocking work off the I/O thread (DESIGN.md §3).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace odd {

// Runs blocking `fn` on `executor`; the caller resumes on its own executor with the result.
// The caller's cancellation is not passed on: `fn` cannot be interrupted, and Boost 1.81's
// co_spawn delivers a cancellation to the other executor after the spawned coroutine may have
// finished, touching freed memory.
template <class Fn>
auto on_executor(boost::asio::any_io_executor executor, Fn fn)
    -> boost::asio::awaitable<decltype(fn())> {
  using T = decltype(fn());
  co_return co_await boost::asio::co_spawn(
      executor, [&fn]() -> boost::asio::awaitable<T> { co_return fn(); },
      boost::asio::bind_cancellation_slot(boost::asio::cancellation_slot(),
                                          boost::asio::use_awaitable));
}

}  // namespace odd
