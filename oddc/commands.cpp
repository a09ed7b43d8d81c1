#include "oddc/commands.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <filesystem>
#include <ostream>

#include "oddc/exit_codes.hpp"
#include "oddc/render.hpp"
#include "oddc/tar_reader.hpp"

#ifndef ODD_VERSION
#define ODD_VERSION "0.0.0"
#endif

namespace odd::oddc {

namespace {

constexpr std::string_view kRootUsage = "[--socket PATH] COMMAND [ARGS]...";
constexpr std::string_view kRootSummary =
    "odd's command-line client: submits runs to oddd and follows them.";

std::string run_path(const Options& options) { return "/v1/runs/" + url_encode(options.run_id); }

// A JSON body the daemon sent, or internal naming the socket.
Result<proto::Json> parse_body(const Client& client, const std::string& body) {
  auto json = proto::Json::parse(body, nullptr, false);
  if (json.is_discarded()) {
    return internal_error("the daemon on " + client.socket_path() + " sent malformed JSON");
  }
  return json;
}

Status malformed(const Client& client, const Status& status) {
  return internal_error("unexpected answer from the daemon on " + client.socket_path() + ": " +
                        status.message());
}

void print_body(Io& io, const std::string& body) {
  io.out << body;
  if (!body.empty() && body.back() != '\n') io.out << '\n';
  io.out.flush();
}

// ---- Option definitions ----------------------------------------------------------------------

void run_id_option(CLI::App& app, Options& o) {
  app.add_option("RUN", o.run_id, "the run's id, as `oddc ls` shows it")->required();
}

void define_run(CLI::App& app, Options& o) {
  app.add_option("SPEC", o.spec, "the run spec: a YAML or JSON file, or - for standard input")
      ->required();
  app.add_option("-e,--var", o.vars,
                 "KEY=VALUE, or @FILE.json|yaml with a mapping; overrides the spec's vars "
                 "(a later one wins)")
      ->allow_extra_args(false)
      ->type_name("KEY=VALUE|@FILE");
  app.add_option("--secret", o.secrets,
                 "send the value of environment variable NAME as secret NAME")
      ->allow_extra_args(false)
      ->type_name("NAME");
  app.add_flag("--detach", o.detach, "print the run's id and leave it running");
  auto* verbose =
      app.add_flag("-v,--verbose", o.verbose, "also show each job's stdout (-vv: and stderr)");
  app.add_flag("-q,--quiet", o.quiet, "show only the final summary")->excludes(verbose);
  app.add_flag("--json", o.json, "print only the aggregate summary JSON")->excludes(verbose);
}

void define_ls(CLI::App& app, Options& o) {
  std::vector<std::string> states;
  for (auto s : {proto::RunState::kQueued, proto::RunState::kRunning, proto::RunState::kSucceeded,
                 proto::RunState::kFailed, proto::RunState::kCancelled}) {
    states.emplace_back(proto::to_string(s));
  }
  app.add_option("--state", o.state, "only runs in this state")
      ->check(CLI::IsMember(states))
      ->type_name("STATE");
  app.add_option("--limit", o.limit, "at most N runs (1 to 1000, default 50)")
      ->check(CLI::Range(1, 1000))
      ->type_name("N");
  app.add_flag("--json", o.json, "print the run objects as the daemon sent them");
}

void define_status(CLI::App& app, Options& o) {
  run_id_option(app, o);
  app.add_flag("--json", o.json, "print the run object as the daemon sent it");
}

void define_logs(CLI::App& app, Options& o) {
  run_id_option(app, o);
  app.add_option("JOB", o.job, "the job key; optional when the run has one job");
  app.add_flag("--stderr", o.stderr_stream, "the job's stderr instead of its stdout");
  app.add_flag("-f,--follow", o.follow, "keep printing until the job's log ends");
}

void define_events(CLI::App& app, Options& o) {
  run_id_option(app, o);
  app.add_flag("-f,--follow", o.follow, "keep printing until the run ends");
  app.add_option("--since", o.since, "start after sequence number N")->type_name("N");
}

void define_run_only(CLI::App& app, Options& o) { run_id_option(app, o); }

void define_artifacts(CLI::App& app, Options& o) {
  run_id_option(app, o);
  app.add_option("-o,--output", o.out_dir, "the directory to extract into (created)")
      ->required()
      ->type_name("DIR");
}

void define_none(CLI::App&, Options&) {}

void define_hosts(CLI::App& app, Options& o) {
  app.add_flag("--json", o.json, "print the daemon's health JSON as it sent it");
}

// ---- Handlers -------------------------------------------------------------------------------

asio::awaitable<int> ls_command(Context& c) {
  std::string target = "/v1/runs?limit=" + std::to_string(c.options.limit);
  if (!c.options.state.empty()) target += "&state=" + url_encode(c.options.state);
  auto body = co_await c.client.call("GET", target);
  if (!body) co_return report(c.io, body.error());
  if (c.options.json) {
    print_body(c.io, *body);
    co_return kExitOk;
  }
  auto json = parse_body(c.client, *body);
  if (!json) co_return report(c.io, json.error());
  if (!json->is_array()) {
    co_return report(c.io, malformed(c.client, invalid_argument("expected a list of runs")));
  }
  std::vector<proto::RunInfo> runs;
  for (const auto& item : *json) {
    auto run = proto::decode_run_info(item);
    if (!run) co_return report(c.io, malformed(c.client, run.error()));
    runs.push_back(std::move(*run));
  }
  c.io.out << render_run_list(runs);
  co_return kExitOk;
}

asio::awaitable<Result<proto::RunInfo>> get_run(Context& c) {
  auto body = co_await c.client.call("GET", run_path(c.options));
  if (!body) co_return body.error();
  auto json = parse_body(c.client, *body);
  if (!json) co_return json.error();
  auto run = proto::decode_run_info(*json);
  if (!run) co_return malformed(c.client, run.error());
  co_return std::move(*run);
}

asio::awaitable<int> status_command(Context& c) {
  if (c.options.json) {
    auto body = co_await c.client.call("GET", run_path(c.options));
    if (!body) co_return report(c.io, body.error());
    print_body(c.io, *body);
    co_return kExitOk;
  }
  auto run = co_await get_run(c);
  if (!run) co_return report(c.io, run.error());
  c.io.out << render_run(*run);
  co_return kExitOk;
}

asio::awaitable<int> logs_command(Context& c) {
  std::string job = c.options.job;
  if (job.empty()) {
    auto run = co_await get_run(c);
    if (!run) co_return report(c.io, run.error());
    if (run->jobs.size() != 1) {
      if (run->jobs.empty()) {
        co_return report(c.io, invalid_argument("run " + run->id + " has no jobs yet; name one"));
      }
      std::string keys;
      for (const auto& j : run->jobs) {
        if (!keys.empty()) keys += ", ";
        keys += j.key;
      }
      co_return report(
          c.io, invalid_argument("run " + run->id + " has " + std::to_string(run->jobs.size()) +
                                 " jobs; name one: " + keys));
    }
    job = run->jobs.front().key;
  }
  std::string target = run_path(c.options) + "/jobs/" + url_encode(job) +
                       "/logs?stream=" + (c.options.stderr_stream ? "stderr" : "stdout");
  if (c.options.follow) target += "&follow=1";
  auto stream = co_await c.client.stream("GET", target);
  if (!stream) co_return report(c.io, stream.error());
  for (;;) {
    auto piece = co_await (*stream)->read_some();
    if (!piece) co_return report(c.io, piece.error());
    if (piece->empty()) break;
    c.io.out.write(piece->data(), static_cast<std::streamsize>(piece->size()));
    c.io.out.flush();
  }
  co_return kExitOk;
}

bool is_error_line(const std::string& line) {
  if (!line.starts_with("{")) return false;
  const auto json = proto::Json::parse(line, nullptr, false);
  return json.is_object() && json.contains("error") && !json.contains("seq");
}

asio::awaitable<int> events_command(Context& c) {
  std::string target = run_path(c.options) + "/events?since=" + std::to_string(c.options.since);
  if (c.options.follow) target += "&follow=1";
  auto stream = co_await c.client.stream("GET", target);
  if (!stream) co_return report(c.io, stream.error());
  for (;;) {
    auto line = co_await (*stream)->read_line();
    if (!line) co_return report(c.io, line.error());
    if (!*line) break;
    if (line->value().empty()) continue;
    // A stream that fails on the daemon's side ends with an error object instead of an event.
    if (is_error_line(line->value())) {
      co_return report(c.io, response_error(500, line->value()));
    }
    c.io.out << line->value() << '\n';
    c.io.out.flush();
  }
  co_return kExitOk;
}

asio::awaitable<int> cancel_command(Context& c) {
  auto body = co_await c.client.call("POST", run_path(c.options) + "/cancel");
  if (!body) co_return report(c.io, body.error());
  co_return kExitOk;
}

asio::awaitable<int> summary_command(Context& c) {
  auto body = co_await c.client.call("GET", run_path(c.options) + "/summary");
  if (!body) co_return report(c.io, body.error());
  print_body(c.io, *body);
  co_return kExitOk;
}

asio::awaitable<int> artifacts_command(Context& c) {
  const std::string context = "artifacts of run " + c.options.run_id;
  std::filesystem::path dir(c.options.out_dir);
  if (dir.is_relative() && !c.io.cwd.empty()) dir = std::filesystem::path(c.io.cwd) / dir;
  // The daemon's tar is one logs/ folder; its contents go straight into DIR.
  auto extractor = TarExtractor::create(dir.string(), "logs");
  if (!extractor) co_return report(c.io, extractor.error());
  auto stream = co_await c.client.stream("GET", run_path(c.options) + "/artifacts");
  if (!stream) co_return report(c.io, stream.error());
  for (;;) {
    auto piece = co_await (*stream)->read_some();
    if (!piece) co_return report(c.io, piece.error().with_context(context));
    if (piece->empty()) break;
    if (Status s = (*extractor)->write(*piece); !s.ok()) {
      // What the daemon sent cannot be extracted safely: not the caller's usage error.
      co_return report(c.io, internal_error(context + ": " + s.message()));
    }
  }
  if (Status s = (*extractor)->finish(); !s.ok()) {
    co_return report(c.io, internal_error(context + ": " + s.message()));
  }
  co_return kExitOk;
}

std::string text_of(const proto::Json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "?";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

asio::awaitable<int> version_command(Context& c) {
  c.io.out << "oddc " << client_version() << '\n';
  c.io.out.flush();
  auto body = co_await c.client.call("GET", "/v1/version");
  if (!body) co_return report(c.io, body.error());
  auto json = parse_body(c.client, *body);
  if (!json) co_return report(c.io, json.error());
  if (!json->is_object()) {
    co_return report(c.io, malformed(c.client, invalid_argument("expected an object")));
  }
  c.io.out << "oddd " << text_of(*json, "version") << " (API " << text_of(*json, "api_version")
           << ")\n";
  const auto docker = json->find("docker");
  if (docker != json->end() && docker->is_object()) {
    c.io.out << "dockerd " << text_of(*docker, "version") << " (API "
             << text_of(*docker, "api_version") << ")\n";
  } else {
    c.io.out << "dockerd unreachable\n";
  }
  co_return kExitOk;
}

asio::awaitable<int> hosts_command(Context& c) {
  auto body = co_await c.client.call("GET", "/v1/health");
  if (!body) co_return report(c.io, body.error());
  if (c.options.json) {
    print_body(c.io, *body);
    co_return kExitOk;
  }
  auto json = parse_body(c.client, *body);
  if (!json) co_return report(c.io, json.error());
  const auto hosts = json->is_object() ? json->find("hosts") : json->end();
  if (hosts == json->end() || !hosts->is_object()) {
    co_return report(c.io, malformed(c.client, invalid_argument("expected an object of hosts")));
  }
  std::vector<HostView> views;
  for (auto host = hosts->begin(); host != hosts->end(); ++host) {
    const proto::Json& entry = host.value();
    HostView view;
    view.name = host.key();
    if (entry.is_object()) {
      auto string_of = [&entry](std::string_view key) {
        const auto it = entry.find(key);
        return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      auto number_of = [&entry](std::string_view key) {
        const auto it = entry.find(key);
        return it != entry.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
      };
      view.address = string_of("address");
      view.state = string_of("state");
      view.error = string_of("error");
      view.sessions = number_of("sessions");
      view.in_use = number_of("in_use");
    }
    views.push_back(std::move(view));
  }
  c.io.out << render_hosts(views);
  co_return kExitOk;
}

asio::awaitable<int> ping_command(Context& c) {
  auto body = co_await c.client.call("GET", "/v1/version");
  if (!body) co_return report(c.io, body.error());
  c.io.out << "ok\n";
  co_return kExitOk;
}

// ---- Help ------------------------------------------------------------------------------------

const Command* find_command(std::string_view name) {
  for (const auto& command : commands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::string command_names() {
  std::string names;
  for (const auto& command : commands()) {
    if (!names.empty()) names += ", ";
    names += command.name;
  }
  return names;
}

std::string usage_line(const Command* command) {
  if (command == nullptr) return "oddc " + std::string(kRootUsage);
  std::string line = "oddc " + std::string(command->name);
  if (!command->usage.empty()) line.append(" ").append(command->usage);
  return line;
}

// Help text from the table: the usage line and summary, then CLI11's option list.
class HelpFormatter final : public CLI::Formatter {
 public:
  HelpFormatter() {
    label("Positionals", "arguments");
    label("REQUIRED", "(required)");
    column_width(24);
  }

  // The value's name only: the usage line already shows what is required or repeatable.
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (opt->get_positional() || opt->get_type_size() == 0 || opt->get_type_name().empty()) {
      return "";
    }
    return " " + opt->get_type_name();
  }

  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode mode) const override {
    const Command* command = app->get_parent() == nullptr ? nullptr : find_command(app->get_name());
    std::string out = "usage: " + usage_line(command) + "\n\n";
    out += std::string(command == nullptr ? kRootSummary : command->summary) + "\n";
    out += make_positionals(app);
    out += make_groups(app, mode);
    if (command == nullptr) {
      out += "\ncommands:\n";
      for (const auto& c : commands()) {
        std::string line = "  " + std::string(c.name);
        line.append(line.size() < 12 ? 12 - line.size() : 1, ' ');
        line.append(c.usage);
        while (line.back() == ' ') line.pop_back();
        out += line + "\n";
        out += "            " + std::string(c.summary) + "\n";
      }
      out += "\nRun 'oddc COMMAND --help' for a command's options.\n";
    }
    return out;
  }
};

// The first argument that is not a global option: the command's name, if any.
std::optional<std::string> command_argument(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--socket") {
      ++i;
      continue;
    }
    if (arg.starts_with("--socket=") || arg.starts_with("-")) continue;
    return std::string(arg);
  }
  return std::nullopt;
}

}  // namespace

std::string_view client_version() { return ODD_VERSION; }

const std::vector<Command>& commands() {
  static const std::vector<Command> table{
      {"run",
       "SPEC [-e k=v]... [-e @file.json|yaml] [--secret NAME]... [--detach] [-q|-v|-vv] [--json]",
       "Submit a run spec and follow the run to its end; the exit code tells how it ended.",
       &define_run, &run_command},
      {"ls", "[--state STATE] [--limit N] [--json]", "List runs, newest first.", &define_ls,
       &ls_command},
      {"status", "RUN [--json]", "Show a run and its jobs.", &define_status, &status_command},
      {"logs", "RUN [JOB] [--stderr] [-f]", "Print a job's log.", &define_logs, &logs_command},
      {"events", "RUN [-f] [--since N]", "Print a run's events as NDJSON.", &define_events,
       &events_command},
      {"cancel", "RUN", "Cancel a run; its cleanup still runs.", &define_run_only, &cancel_command},
      {"summary", "RUN", "Print a run's aggregate summary JSON.", &define_run_only,
       &summary_command},
      {"artifacts", "RUN -o DIR", "Extract a run's logs, summaries and files into DIR.",
       &define_artifacts, &artifacts_command},
      {"hosts", "[--json]",
       "Show the daemon's remote hosts: address, state, SSH sessions and the last error.",
       &define_hosts, &hosts_command},
      {"version", "", "Print the versions of oddc, oddd and dockerd.", &define_none,
       &version_command},
      {"ping", "", "Check that the daemon answers: prints ok.", &define_none, &ping_command},
  };
  return table;
}

int report(Io& io, const Status& status) {
  io.out.flush();
  io.err << "oddc: " << status.message() << '\n';
  io.err.flush();
  return exit_code_for(status);
}

int run_main(int argc, const char* const* argv, Io& io) {
  Options options;
  CLI::App app(std::string(kRootSummary), "oddc");
  app.formatter(std::make_shared<HelpFormatter>());
  app.option_defaults()->group("options");
  app.set_help_flag("-h,--help", "print this help");
  app.add_option("--socket", options.socket,
                 "the daemon's control socket (default: $ODD_SOCKET, then " +
                     std::string(kDefaultSocket) + ")")
      ->type_name("PATH")
      ->check([](const std::string& value) {
        return value.empty() ? std::string("must not be empty") : std::string();
      });
  app.require_subcommand(0, 1);
  std::vector<std::pair<CLI::App*, const Command*>> subcommands;
  for (const auto& command : commands()) {
    CLI::App* sub = app.add_subcommand(std::string(command.name), std::string(command.summary));
    sub->option_defaults()->group("options");
    sub->set_help_flag("-h,--help", "print this help");
    command.define(*sub, options);
    subcommands.emplace_back(sub, &command);
  }

  const auto name = command_argument(argc, argv);
  if (name && find_command(*name) == nullptr) {
    return report(io, invalid_argument("unknown command \"" + *name +
                                       "\" (commands: " + command_names() + ")"));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    io.out << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    io.out << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    const std::string message = e.what();
    const Command* command = nullptr;
    for (const auto& [sub, c] : subcommands) {
      // A global option's error is about oddc's own usage, whatever command follows it.
      if (sub->parsed() && !message.starts_with("--socket")) command = c;
    }
    return report(io, invalid_argument(message + " (usage: " + usage_line(command) + ")"));
  }
  const Command* chosen = nullptr;
  for (const auto& [sub, c] : subcommands) {
    if (sub->parsed()) chosen = c;
  }
  if (chosen == nullptr) {
    return report(io, invalid_argument("no command given (commands: " + command_names() +
                                       "; see oddc --help)"));
  }

  asio::io_context context(1);
  Client client(context.get_executor(),
                choose_socket(options.socket, io.env ? io.env("ODD_SOCKET") : std::nullopt));
  std::optional<int> left;
  Context ctx{io, options, client, [&](int code) {
                left = code;
                context.stop();
              }};
  int code = kExitInfra;
  asio::co_spawn(context, chosen->handler(ctx), [&](std::exception_ptr error, int result) {
    if (!error) {
      code = result;
      return;
    }
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      code = report(io, internal_error(std::string("internal error: ") + e.what()));
    }
  });
  context.run();
  io.out.flush();
  return left.value_or(code);
}

}  // namespace odd::oddc
