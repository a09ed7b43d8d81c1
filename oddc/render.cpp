#include "oddc/render.hpp"

#include <algorithm>
#include <utility>

namespace odd::oddc {

namespace {

using proto::Json;
using Rows = std::vector<std::vector<std::string>>;

constexpr std::size_t kMaxPartialLine = 64 * 1024;

// Text from containers and the daemon may hold control characters; on a terminal they would
// move the cursor under the redrawn block.
std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

// Characters, counting a UTF-8 sequence as one.
std::size_t width_of(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

std::string cut_to_width(std::string text, std::size_t width) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) continue;
    if (seen == width) {
      text.resize(i);
      break;
    }
    ++seen;
  }
  return text;
}

void pad_to(std::string& text, std::size_t width) {
  const std::size_t have = width_of(text);
  if (have < width) text.append(width - have, ' ');
}

// Columns two spaces apart; trailing empty cells and spaces are dropped.
std::string table(const Rows& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], width_of(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size()) pad_to(line, width_of(line) + widths[i] - width_of(row[i]));
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }
  return out;
}

std::optional<std::uint64_t> unsigned_at(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  }
  return std::nullopt;
}

std::optional<std::string> string_at(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string progress_text(const proto::Progress& progress) {
  std::string text = std::to_string(progress.done) + "/" + std::to_string(progress.total);
  if (!progress.label.empty()) text.append(" ").append(printable(progress.label));
  return text;
}

std::string state_with_detail(const JobView& job) {
  std::string text(proto::to_string(job.state));
  if (job.state == proto::JobState::kRunning && job.attempt > 1) {
    text += " (attempt " + std::to_string(job.attempt) + ")";
  } else if (proto::is_final(job.state) && job.exit_code) {
    text += " (exit " + std::to_string(*job.exit_code) + ")";
  }
  return text;
}

std::string plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string counts_text(const proto::JobCounts& counts) {
  std::vector<std::string> parts;
  auto add = [&](std::uint64_t n, std::string_view what) {
    if (n > 0) parts.push_back(std::to_string(n) + " " + std::string(what));
  };
  add(counts.succeeded, "succeeded");
  add(counts.failed, "failed");
  add(counts.timed_out, "timed out");
  add(counts.cancelled, "cancelled");
  add(counts.skipped, "skipped");
  if (parts.empty()) return "no jobs";
  std::string text;
  for (const auto& part : parts) {
    if (!text.empty()) text += ", ";
    text += part;
  }
  return text;
}

std::string time_or_dash(const std::optional<proto::Timestamp>& time) {
  return time ? proto::format_rfc3339(*time) : "-";
}

std::string duration_or_dash(const std::optional<proto::Timestamp>& from,
                             const std::optional<proto::Timestamp>& to) {
  if (!from || !to || *to < *from) return "-";
  return format_duration(*to - *from);
}

class TtyRenderer final : public Renderer {
 public:
  explicit TtyRenderer(std::size_t columns) : columns_(std::max<std::size_t>(columns, 20)) {}

  std::string started(std::string_view run_id) override {
    return redraw("run " + std::string(run_id) + "\n");
  }

  std::string event(const proto::Event& event, SteadyTime now) override {
    const auto applied = view_.apply(event);
    switch (applied.change) {
      case RunView::Change::kNone:
      case RunView::Change::kRunState:
        return "";
      case RunView::Change::kJobState: {
        last_draw_ = now;
        const JobView& job = view_.jobs()[applied.job];
        if (job.state == proto::JobState::kPending) return redraw("");
        return redraw(printable(job_state_text(job)) + "\n");
      }
      case RunView::Change::kJobProgress:
        if (drawn_ > 0 && now - last_draw_ < kTtyRedrawInterval) {
          dirty_ = true;
          return "";
        }
        last_draw_ = now;
        return redraw("");
    }
    return "";
  }

  std::string lines(std::string_view text) override { return redraw(text); }

  std::string tick(SteadyTime now) override {
    if (!dirty_ || now - last_draw_ < kTtyRedrawInterval) return "";
    last_draw_ = now;
    return redraw("");
  }

  std::string finish() override { return dirty_ ? redraw("") : ""; }

 private:
  // Moves up over the block, clears from there down, writes `above` and the block again: what
  // was printed above scrolls away normally, and the block stays at the bottom.
  std::string redraw(std::string_view above) {
    std::string out;
    if (drawn_ > 0) out += "\r\x1b[" + std::to_string(drawn_) + "A\x1b[J";
    out += above;
    std::size_t key_width = 0;
    for (const auto& job : view_.jobs()) key_width = std::max(key_width, width_of(job.key));
    for (const auto& job : view_.jobs()) {
      out += job_line(job, key_width, columns_);
      out += '\n';
    }
    drawn_ = view_.jobs().size();
    dirty_ = false;
    return out;
  }

  std::size_t columns_;
  RunView view_;
  std::size_t drawn_ = 0;
  bool dirty_ = false;
  SteadyTime last_draw_{};
};

class PlainRenderer final : public Renderer {
 public:
  std::string started(std::string_view run_id) override {
    return "run " + std::string(run_id) + "\n";
  }

  std::string event(const proto::Event& event, SteadyTime now) override {
    const auto applied = view_.apply(event);
    switch (applied.change) {
      case RunView::Change::kNone:
        return "";
      case RunView::Change::kRunState: {
        const auto state = *view_.run_state();
        // The summary reports the final state.
        if (proto::is_final(state)) return "";
        return "run " + printable(event.run) + ": " + std::string(proto::to_string(state)) + "\n";
      }
      case RunView::Change::kJobState: {
        slot(applied.job).pending = false;
        const JobView& job = view_.jobs()[applied.job];
        if (job.state == proto::JobState::kPending) return "";
        return printable(job_state_text(job)) + "\n";
      }
      case RunView::Change::kJobProgress: {
        Slot& s = slot(applied.job);
        if (s.printed && now - s.last < kPlainProgressInterval) {
          s.pending = true;
          return "";
        }
        return progress_line(applied.job, now);
      }
    }
    return "";
  }

  std::string lines(std::string_view text) override { return std::string(text); }

  std::string tick(SteadyTime now) override {
    std::string out;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const Slot& s = slots_[i];
      if (s.pending && now - s.last >= kPlainProgressInterval) out += progress_line(i, now);
    }
    return out;
  }

  std::string finish() override { return ""; }

 private:
  struct Slot {
    bool printed = false;
    bool pending = false;
    SteadyTime last{};
  };

  Slot& slot(std::size_t job) {
    if (slots_.size() <= job) slots_.resize(job + 1);
    return slots_[job];
  }

  std::string progress_line(std::size_t index, SteadyTime now) {
    Slot& s = slot(index);
    s.printed = true;
    s.pending = false;
    s.last = now;
    const JobView& job = view_.jobs()[index];
    return printable(job.key) + ": " + progress_text(job.progress) + "\n";
  }

  RunView view_;
  std::vector<Slot> slots_;
};

class QuietRenderer final : public Renderer {
 public:
  std::string started(std::string_view) override { return ""; }
  std::string event(const proto::Event&, SteadyTime) override { return ""; }
  std::string lines(std::string_view) override { return ""; }
  std::string tick(SteadyTime) override { return ""; }
  std::string finish() override { return ""; }
};

}  // namespace

RunView::Applied RunView::apply(const proto::Event& event) {
  const Json& payload = event.payload;
  if (!payload.is_object()) return {};
  if (event.type == proto::kEventRunState) {
    const auto text = string_at(payload, "state");
    if (!text) return {};
    const auto state = proto::parse_run_state(*text);
    if (!state.has_value() || run_state_ == *state) return {};
    run_state_ = *state;
    return {Change::kRunState, 0};
  }
  if (!event.job || event.job->empty()) return {};
  if (event.type == proto::kEventJobState) {
    const auto text = string_at(payload, "state");
    if (!text) return {};
    const auto state = proto::parse_job_state(*text);
    if (!state.has_value()) return {};
    const std::size_t index = job_index(*event.job);
    JobView& job = jobs_[index];
    const JobView before = job;
    job.state = *state;
    if (const auto attempt = unsigned_at(payload, "attempt")) {
      job.attempt = static_cast<std::uint32_t>(*attempt);
    }
    if (const auto it = payload.find("exit_code"); it != payload.end()) {
      if (it->is_number_integer()) {
        job.exit_code = it->get<std::int64_t>();
      } else if (it->is_null()) {
        job.exit_code.reset();
      }
    }
    if (const auto it = payload.find("error"); it != payload.end()) {
      if (it->is_string()) {
        job.error = it->get<std::string>();
      } else if (it->is_null()) {
        job.error.reset();
      }
    }
    const bool changed = before.state != job.state || before.attempt != job.attempt ||
                         before.exit_code != job.exit_code || before.error != job.error;
    return {changed ? Change::kJobState : Change::kNone, index};
  }
  if (event.type == proto::kEventJobProgress) {
    const Json* source = &payload;
    if (const auto it = payload.find("progress"); it != payload.end() && it->is_object()) {
      source = &*it;
    }
    const auto done = unsigned_at(*source, "done");
    const auto total = unsigned_at(*source, "total");
    if (!done || !total) return {};
    proto::Progress progress{*done, *total, string_at(*source, "label").value_or("")};
    const std::size_t index = job_index(*event.job);
    if (jobs_[index].progress == progress) return {Change::kNone, index};
    jobs_[index].progress = std::move(progress);
    return {Change::kJobProgress, index};
  }
  return {};
}

std::size_t RunView::job_index(const std::string& key) {
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i].key == key) return i;
  }
  JobView job;
  job.key = key;
  jobs_.push_back(std::move(job));
  return jobs_.size() - 1;
}

std::string progress_bar(const proto::Progress& progress, std::size_t width) {
  std::size_t filled = 0;
  if (progress.total > 0) {
    const std::uint64_t done = std::min(progress.done, progress.total);
    filled =
        static_cast<std::size_t>(static_cast<double>(done) / static_cast<double>(progress.total) *
                                 static_cast<double>(width));
    filled = std::min(filled, width);
  }
  std::string bar = "[";
  bar.append(filled, '#');
  bar.append(width - filled, '-');
  bar += ']';
  return bar;
}

std::string job_line(const JobView& job, std::size_t key_width, std::size_t columns) {
  std::string line = printable(job.key);
  pad_to(line, key_width);
  const bool has_progress = job.progress.total > 0;
  if (has_progress) {
    line += "  " + progress_bar(job.progress) + "  " + progress_text(job.progress);
  }
  if (!has_progress || job.state != proto::JobState::kRunning) {
    line += "  " + state_with_detail(job);
  }
  return cut_to_width(std::move(line), columns > 0 ? columns - 1 : 0);
}

std::string job_state_text(const JobView& job) {
  std::string text = job.key + ": " + state_with_detail(job);
  if (job.error && !job.error->empty()) text += ": " + *job.error;
  return text;
}

std::string format_duration(std::chrono::seconds duration) {
  const auto total = std::max<std::int64_t>(duration.count(), 0);
  const std::int64_t hours = total / 3600;
  const std::int64_t minutes = total / 60 % 60;
  const std::int64_t seconds = total % 60;
  auto two = [](std::int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  if (hours > 0) return std::to_string(hours) + "h" + two(minutes) + "m" + two(seconds) + "s";
  if (minutes > 0) return std::to_string(minutes) + "m" + two(seconds) + "s";
  return std::to_string(seconds) + "s";
}

std::unique_ptr<Renderer> make_tty_renderer(std::size_t columns) {
  return std::make_unique<TtyRenderer>(columns);
}

std::unique_ptr<Renderer> make_plain_renderer() { return std::make_unique<PlainRenderer>(); }

std::unique_ptr<Renderer> make_quiet_renderer() { return std::make_unique<QuietRenderer>(); }

std::string LinePrefixer::feed(std::string_view bytes) {
  std::string out;
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    std::size_t take = newline == std::string_view::npos ? bytes.size() : newline + 1;
    take = std::min(take, kMaxPartialLine - partial_.size());
    partial_.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (partial_.back() == '\n') {
      out += prefix_;
      out += partial_;
      partial_.clear();
    } else if (partial_.size() >= kMaxPartialLine) {
      out += prefix_;
      out += partial_;
      out += '\n';
      partial_.clear();
    }
  }
  return out;
}

std::string LinePrefixer::flush() {
  if (partial_.empty()) return "";
  std::string out = prefix_ + partial_ + "\n";
  partial_.clear();
  return out;
}

SuiteCounts count_suites(const std::vector<proto::SuiteResult>& suites) {
  SuiteCounts counts;
  for (const auto& suite : suites) {
    switch (suite.status) {
      case proto::SuiteStatus::kPass:
        ++counts.passed;
        break;
      case proto::SuiteStatus::kSkip:
        ++counts.skipped;
        break;
      case proto::SuiteStatus::kFail:
        if (suite.expect == "xfail") {
          ++counts.xfail;
        } else {
          ++counts.failed;
          counts.failed_names.push_back(suite.name);
        }
        break;
    }
  }
  return counts;
}

std::string render_summary(const proto::RunSummary& summary) {
  Rows rows;
  for (const auto& job : summary.jobs) {
    const SuiteCounts suites = count_suites(job.suites);
    std::string suite_text = std::to_string(suites.passed) + " passed, " +
                             std::to_string(suites.failed) + " failed, " +
                             std::to_string(suites.xfail) + " xfail";
    if (suites.skipped > 0) suite_text += ", " + std::to_string(suites.skipped) + " skipped";
    std::string failed;
    for (const auto& name : suites.failed_names) {
      failed += failed.empty() ? "failed: " : ", ";
      failed += printable(name);
    }
    std::string error;
    if (job.error && !job.error->empty()) error = "error: " + printable(*job.error);
    rows.push_back({printable(job.key), std::string(proto::to_string(job.state)),
                    job.exit_code ? "exit " + std::to_string(*job.exit_code) : "exit -",
                    plural(job.attempts, "attempt", "attempts"),
                    duration_or_dash(job.started_at, job.finished_at), suite_text,
                    failed.empty() ? error : failed, failed.empty() ? "" : error});
  }
  std::string out = table(rows);
  out += printable(summary.name) + " " + printable(summary.run_id) + ": " +
         std::string(proto::to_string(summary.state)) + " (" + counts_text(summary.counts) + ")\n";
  return out;
}

std::string render_run_list(const std::vector<proto::RunInfo>& runs) {
  Rows rows{{"ID", "NAME", "STATE", "CREATED", "DURATION"}};
  for (const auto& run : runs) {
    rows.push_back({printable(run.id), printable(run.name),
                    std::string(proto::to_string(run.state)), proto::format_rfc3339(run.created_at),
                    duration_or_dash(run.started_at, run.finished_at)});
  }
  return table(rows);
}

std::string render_run(const proto::RunInfo& run) {
  Rows fields{
      {"run", printable(run.id)},
      {"name", printable(run.name)},
      {"state", std::string(proto::to_string(run.state))},
      {"created", proto::format_rfc3339(run.created_at)},
      {"started", time_or_dash(run.started_at)},
      {"finished", time_or_dash(run.finished_at)},
      {"duration", duration_or_dash(run.started_at, run.finished_at)},
      {"caller", "uid " + std::to_string(run.caller.uid) + ", gid " +
                     std::to_string(run.caller.gid) + ", pid " + std::to_string(run.caller.pid)}};
  std::string out = table(fields);
  if (run.jobs.empty()) return out;
  Rows jobs{{"JOB", "STATE", "ATTEMPT", "EXIT", "HOST", "DURATION", "PROGRESS"}};
  for (const auto& job : run.jobs) {
    jobs.push_back({printable(job.key), std::string(proto::to_string(job.state)),
                    std::to_string(job.attempt),
                    job.exit_code ? std::to_string(*job.exit_code) : "-", printable(job.host),
                    duration_or_dash(job.started_at, job.finished_at),
                    job.progress.total > 0 ? progress_text(job.progress) : "-"});
  }
  out += '\n';
  out += table(jobs);
  return out;
}

std::string render_hosts(const std::vector<HostView>& hosts) {
  if (hosts.empty()) return "no remote hosts are configured\n";
  Rows rows{{"HOST", "ADDRESS", "STATE", "SESSIONS", "IN USE", "ERROR"}};
  for (const auto& host : hosts) {
    rows.push_back({printable(host.name), host.address.empty() ? "-" : printable(host.address),
                    host.state.empty() ? "?" : printable(host.state), std::to_string(host.sessions),
                    std::to_string(host.in_use), host.error.empty() ? "-" : printable(host.error)});
  }
  return table(rows);
}

}  // namespace odd::oddc
