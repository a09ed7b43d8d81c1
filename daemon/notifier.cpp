#include "daemon/notifier.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace odd::daemon {

struct Notifier::Waiter {
  asio::steady_timer* timer = nullptr;
  bool woken = false;
};

asio::awaitable<Status> Notifier::wait() {
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           asio::steady_timer::time_point::max());
  Waiter waiter{&timer, false};
  waiters_.push_back(&waiter);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  waiters_.remove(&waiter);
  if (!waiter.woken) co_return cancelled("wait cancelled");
  co_return ok_status();
}

void Notifier::notify_all() {
  for (Waiter* waiter : waiters_) {
    if (waiter->woken) continue;
    waiter->woken = true;
    waiter->timer->cancel();
  }
}

struct Semaphore::Waiter {
  asio::steady_timer* timer = nullptr;
  bool granted = false;
};

asio::awaitable<Status> Semaphore::acquire() {
  if (available_ > 0 && waiters_.empty()) {
    --available_;
    co_return ok_status();
  }
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           asio::steady_timer::time_point::max());
  Waiter waiter{&timer, false};
  waiters_.push_back(&waiter);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  waiters_.remove(&waiter);
  // A permit granted in the same turn as a cancellation is kept: the caller owns it now.
  if (waiter.granted) co_return ok_status();
  co_return cancelled("wait for a job slot cancelled");
}

void Semaphore::release() {
  for (Waiter* waiter : waiters_) {
    if (waiter->granted) continue;
    waiter->granted = true;
    waiter->timer->cancel();
    return;
  }
  ++available_;
}

}  // namespace odd::daemon
