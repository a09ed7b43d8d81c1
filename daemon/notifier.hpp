#pragma once
// Two small coroutine primitives of the daemon's single I/O strand: Notifier wakes everyone waiting
// for "something changed" (check the condition, then wait — no co_await in between, so no wake-up
// is lost), and Semaphore bounds how many jobs run at once. Neither is thread-safe; both must
// outlive their waiters.

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <list>

#include "common/status.hpp"

namespace odd::daemon {

namespace asio = boost::asio;

class Notifier {
 public:
  // Completes at the next notify_all(): ok; cancelled when the awaiting coroutine is cancelled.
  asio::awaitable<Status> wait();
  void notify_all();
  std::size_t waiters() const { return waiters_.size(); }

 private:
  struct Waiter;
  std::list<Waiter*> waiters_;
};

class Semaphore {
 public:
  explicit Semaphore(std::size_t permits) : available_(permits) {}

  // Takes a permit, waiting in FIFO order: ok (the caller must release() it) or cancelled (no
  // permit taken).
  asio::awaitable<Status> acquire();
  void release();
  std::size_t available() const { return available_; }
  std::size_t waiting() const { return waiters_.size(); }

 private:
  struct Waiter;
  std::size_t available_;
  std::list<Waiter*> waiters_;
};

}  // namespace odd::daemon
