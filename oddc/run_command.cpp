// `oddc run`: submit, follow the run's event stream to its end while rendering it, and exit with
// the code its summary calls for. A first interrupt asks the daemon to cancel the run on a second
// connection (once the daemon has named the run) and keeps following; a second one leaves at once
// (the daemon cancels the run when the waiting connection closes).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <ostream>
#include <set>
#include <utility>

#include "oddc/commands.hpp"
#include "oddc/exit_codes.hpp"
#include "oddc/render.hpp"

namespace odd::oddc {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kTick{100};
// After the run ended, how long job log followers get to deliver their last lines.
constexpr std::chrono::seconds kFollowerGrace{5};

auto tuple_awaitable() { return asio::as_tuple(asio::use_awaitable); }

Result<std::string> id_of(const std::string& body, const std::string& socket_path) {
  auto json = proto::Json::parse(body, nullptr, false);
  if (!json.is_discarded() && json.is_object()) {
    if (json.contains("error")) return response_error(500, body);
    const auto it = json.find("id");
    if (it != json.end() && it->is_string()) return it->get<std::string>();
  }
  return internal_error("unexpected answer from the daemon on " + socket_path +
                        ": expected {\"id\": ...}");
}

class RunSession : public std::enable_shared_from_this<RunSession> {
 public:
  RunSession(Context& c, asio::any_io_executor executor)
      : c_(c),
        executor_(executor),
        signals_(executor),
        ticker_(executor),
        followers_changed_(executor) {
    const Options& o = c.options;
    if (o.json || o.quiet) {
      renderer_ = make_quiet_renderer();
    } else if (c.io.tty) {
      renderer_ = make_tty_renderer(c.io.columns);
    } else {
      renderer_ = make_plain_renderer();
    }
  }

  asio::awaitable<int> run() {
    Io& io = c_.io;
    const Options& o = c_.options;
    auto request = build_request();
    if (!request) co_return report(io, request.error());
    std::string body = proto::encode(*request).dump() + "\n";
    if (o.detach) {
      auto answer = co_await c_.client.call("POST", "/v1/runs", std::move(body));
      if (!answer) co_return report(io, answer.error());
      auto id = id_of(*answer, c_.client.socket_path());
      if (!id) co_return report(io, id.error());
      if (o.json) {
        io.out << proto::Json{{"id", *id}}.dump() << '\n';
      } else {
        io.out << *id << '\n';
      }
      io.out.flush();
      co_return kExitOk;
    }

    // Signals are caught before the request leaves, so none can kill oddc between the daemon
    // accepting the run and oddc knowing its id.
    for (const int signo : io.interrupt_signals) {
      boost::system::error_code ignored;
      signals_.add(signo, ignored);
    }
    asio::co_spawn(executor_, watch_signals(shared_from_this()), asio::detached);

    auto opened = co_await c_.client.stream("POST", "/v1/runs", std::move(body));
    if (!opened) {
      stop_helpers();
      co_return report(io, opened.error());
    }
    stream_ = std::move(*opened);
    auto first = co_await stream_->read_line();
    Result<std::string> id = unavailable("the daemon on " + c_.client.socket_path() +
                                         " closed the connection before naming the run");
    if (!first) {
      id = first.error();
    } else if (*first) {
      id = id_of(**first, c_.client.socket_path());
    }
    if (!id) {
      stop_helpers();
      co_return report(io, id.error());
    }
    run_id_ = *id;
    write(renderer_->started(run_id_));
    if (interrupts_ > 0) start_cancel();
    asio::co_spawn(executor_, tick(shared_from_this()), asio::detached);

    Status lost;
    for (;;) {
      auto line = co_await stream_->read_line();
      if (!line) {
        lost = line.error().with_context("following run " + run_id_);
        break;
      }
      if (!*line) break;
      if (Status s = handle_line(**line); !s.ok()) {
        lost = s;
        break;
      }
    }
    stream_->close();
    co_await end_followers();
    write(renderer_->finish());
    stop_helpers();

    if (lost.ok() && !(view_.run_state() && proto::is_final(*view_.run_state()))) {
      lost = unavailable("the daemon on " + c_.client.socket_path() +
                         " ended the event stream of run " + run_id_ + " before the run ended");
    }
    if (!lost.ok()) {
      const int code = report(io, lost);
      co_return interrupts_ > 0 ? kExitCancelled : code;
    }
    co_return co_await finish_with_summary();
  }

 private:
  Result<proto::SubmitRequest> build_request() {
    const Options& o = c_.options;
    auto spec = read_spec(o.spec, c_.io.in, c_.io.cwd);
    if (!spec) return spec.error();
    auto vars = parse_vars(o.vars, c_.io.cwd);
    if (!vars) return vars.error();
    auto secrets = collect_secrets(o.secrets, c_.io.env);
    if (!secrets) return secrets.error();
    proto::SubmitRequest request;
    request.spec_text = std::move(*spec);
    request.vars = std::move(*vars);
    request.secrets = std::move(*secrets);
    request.workdir = c_.io.cwd;
    request.detach = o.detach;
    if (Status s = proto::validate(request); !s.ok()) return s;
    return request;
  }

  Status handle_line(const std::string& line) {
    if (line.empty()) return ok_status();
    auto json = proto::Json::parse(line, nullptr, false);
    // A line oddc cannot read is skipped: leaving would close the connection and so cancel
    // the run over what may be a newer daemon's addition.
    if (json.is_discarded() || !json.is_object()) return ok_status();
    if (json.contains("error") && !json.contains("seq")) return response_error(500, line);
    auto event = proto::decode_event(json);
    if (!event) return ok_status();
    view_.apply(*event);
    write(renderer_->event(*event, SteadyClock::now()));
    if (c_.options.verbose > 0 && event->type == proto::kEventJobState && event->job) {
      const auto state = event->payload.find("state");
      if (state != event->payload.end() && *state == "running") {
        std::uint32_t attempt = 0;
        const auto a = event->payload.find("attempt");
        if (a != event->payload.end() && a->is_number_unsigned()) {
          attempt = a->get<std::uint32_t>();
        }
        if (followed_.emplace(*event->job, attempt).second) {
          ++followers_;
          asio::co_spawn(executor_, follow_log(shared_from_this(), *event->job), asio::detached);
        }
      }
    }
    return ok_status();
  }

  asio::awaitable<int> finish_with_summary() {
    Io& io = c_.io;
    auto body = co_await c_.client.call("GET", "/v1/runs/" + url_encode(run_id_) + "/summary");
    if (!body) {
      report(io, body.error().with_context("summary of run " + run_id_));
      co_return interrupts_ > 0 ? kExitCancelled : exit_code_from_events();
    }
    auto json = proto::Json::parse(*body, nullptr, false);
    auto summary = json.is_discarded() ? Result<proto::RunSummary>(invalid_argument("not JSON"))
                                       : proto::decode_run_summary(json);
    if (!summary) {
      report(io, internal_error("unexpected summary from the daemon on " + c_.client.socket_path() +
                                ": " + summary.error().message()));
      co_return interrupts_ > 0 ? kExitCancelled : exit_code_from_events();
    }
    if (c_.options.json) {
      io.out << *body;
      if (!body->empty() && body->back() != '\n') io.out << '\n';
    } else {
      io.out << render_summary(*summary);
    }
    io.out.flush();
    co_return interrupts_ > 0 ? kExitCancelled : exit_code_for(*summary);
  }

  // The run ended (its final state came with the events) but its summary cannot be had: the
  // events still tell CI how it ended.
  int exit_code_from_events() const {
    proto::RunInfo run;
    run.state = view_.run_state().value_or(proto::RunState::kRunning);
    for (const auto& job : view_.jobs()) {
      proto::JobStatus status;
      status.key = job.key;
      status.state = job.state;
      status.exit_code = job.exit_code;
      run.jobs.push_back(std::move(status));
    }
    return exit_code_for(run);
  }

  static asio::awaitable<void> watch_signals(std::shared_ptr<RunSession> self) {
    for (;;) {
      auto [ec, signo] = co_await self->signals_.async_wait(tuple_awaitable());
      if (ec || self->finished_) co_return;
      if (++self->interrupts_ > 1) {
        self->c_.io.out.flush();
        self->c_.leave(kExitCancelled);
        co_return;
      }
      // Before the daemon named the run there is nothing to cancel yet: run() does it as soon
      // as the id arrives.
      if (!self->run_id_.empty()) self->start_cancel();
    }
  }

  void start_cancel() {
    notice("interrupted: cancelling run " + run_id_ + " (interrupt again to stop waiting)");
    asio::co_spawn(executor_, send_cancel(shared_from_this()), asio::detached);
  }

  static asio::awaitable<void> send_cancel(std::shared_ptr<RunSession> self) {
    auto answer =
        co_await self->c_.client.call("POST", "/v1/runs/" + url_encode(self->run_id_) + "/cancel");
    if (!answer && !self->finished_) {
      self->notice("cancelling run " + self->run_id_ + ": " + answer.error().message());
    }
  }

  static asio::awaitable<void> tick(std::shared_ptr<RunSession> self) {
    while (!self->finished_) {
      self->ticker_.expires_after(kTick);
      auto [ec] = co_await self->ticker_.async_wait(tuple_awaitable());
      if (ec || self->finished_) co_return;
      self->write(self->renderer_->tick(SteadyClock::now()));
    }
  }

  static asio::awaitable<void> follow_log(std::shared_ptr<RunSession> self, std::string key) {
    co_await self->copy_log(key);
    --self->followers_;
    self->followers_changed_.cancel();
  }

  asio::awaitable<void> copy_log(const std::string& key) {
    const std::string target = "/v1/runs/" + url_encode(run_id_) + "/jobs/" + url_encode(key) +
                               "/logs?stream=" + (c_.options.verbose > 1 ? "both" : "stdout") +
                               "&follow=1";
    LinePrefixer prefixer("[" + key + "] ");
    auto stream = co_await c_.client.stream("GET", target);
    if (!stream) {
      show_lines(prefixer.feed("(no log: " + stream.error().message() + ")\n"));
      co_return;
    }
    if (closing_followers_) co_return;
    ResponseStream* raw = stream->get();
    open_logs_.insert(raw);
    for (;;) {
      auto piece = co_await raw->read_some();
      if (!piece || piece->empty()) break;
      show_lines(prefixer.feed(*piece));
    }
    open_logs_.erase(raw);
    show_lines(prefixer.flush());
  }

  // Followers end by themselves once their job's log is closed, which happens before the run
  // ends; the grace period only bounds a daemon that keeps one open.
  asio::awaitable<void> end_followers() {
    followers_changed_.expires_after(kFollowerGrace);
    while (followers_ > 0) {
      auto [ec] = co_await followers_changed_.async_wait(tuple_awaitable());
      if (!ec) break;
    }
    closing_followers_ = true;
    for (ResponseStream* log : open_logs_) log->close();
  }

  void stop_helpers() {
    finished_ = true;
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    signals_.clear(ignored);
    ticker_.cancel();
  }

  void write(const std::string& text) {
    if (text.empty()) return;
    c_.io.out << text;
    c_.io.out.flush();
  }

  void show_lines(const std::string& text) {
    if (!text.empty()) write(renderer_->lines(text));
  }

  void notice(const std::string& text) {
    if (c_.io.tty && !c_.options.quiet && !c_.options.json) {
      write(renderer_->lines("oddc: " + text + "\n"));
      return;
    }
    c_.io.out.flush();
    c_.io.err << "oddc: " << text << '\n';
    c_.io.err.flush();
  }

  Context& c_;
  asio::any_io_executor executor_;
  std::unique_ptr<Renderer> renderer_;
  RunView view_;
  asio::signal_set signals_;
  asio::steady_timer ticker_;
  asio::steady_timer followers_changed_;
  std::unique_ptr<ResponseStream> stream_;
  std::string run_id_;
  int interrupts_ = 0;
  bool finished_ = false;
  bool closing_followers_ = false;
  std::size_t followers_ = 0;
  std::set<std::pair<std::string, std::uint32_t>> followed_;
  std::set<ResponseStream*> open_logs_;
};

}  // namespace

asio::awaitable<int> run_command(Context& context) {
  auto session = std::make_shared<RunSession>(context, co_await asio::this_coro::executor);
  co_return co_await session->run();
}

}  // namespace odd::oddc
