#pragma once
// oddc's commands: one table of (name, usage, summary, options, handler) from which the parser
// (CLI11), `oddc --help`, `oddc CMD --help` and dispatch are all made, and run_main(), the whole
// client as a function of its arguments and an Io, so tests drive it like a user would. Each
// run_main() call owns its io_context and runs it on the calling thread.

#include <boost/asio/awaitable.hpp>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oddc/client.hpp"
#include "oddc/run_input.hpp"

namespace CLI {
class App;
}

namespace odd::oddc {

// The client's version, from the project's (CMake) version.
std::string_view client_version();

// What a command touches outside the process's memory.
struct Io {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
  EnvLookup env;             // ODD_SOCKET, --secret values
  std::string cwd;           // run's workdir; relative paths start here
  bool tty = false;          // stdout is a terminal: draw progress bars
  std::size_t columns = 80;  // the terminal's width
  // Signals that make `run` cancel the run it waits on; a second one leaves at once.
  std::vector<int> interrupt_signals{SIGINT, SIGTERM, SIGHUP};
};

// Every command's options; each command reads its own.
struct Options {
  std::optional<std::string> socket;
  // run
  std::string spec;
  std::vector<std::string> vars;
  std::vector<std::string> secrets;
  bool detach = false;
  bool quiet = false;
  int verbose = 0;
  bool json = false;
  // ls
  std::string state;
  std::size_t limit = 50;
  // status, logs, events, cancel, summary, artifacts
  std::string run_id;
  std::string job;
  bool stderr_stream = false;
  bool follow = false;
  std::uint64_t since = 0;
  std::string out_dir;
};

// What a handler works with.
struct Context {
  Io& io;
  const Options& options;
  Client& client;
  // Ends oddc at once with `code`: stops the io_context, abandoning (closing) every connection.
  std::function<void(int code)> leave;
};

struct Command {
  std::string_view name;
  std::string_view usage;    // after "oddc NAME": "SPEC [-e k=v]... [--detach]"
  std::string_view summary;  // one line
  void (*define)(CLI::App& app, Options& options);
  boost::asio::awaitable<int> (*handler)(Context& context);
};

// The table, in the order `oddc --help` lists it.
const std::vector<Command>& commands();

// Runs oddc with `argv` (argv[0] is the program): parses, dispatches, prints, and returns the
// exit code (DESIGN §4). Errors are one line "oddc: <message>" on io.err.
int run_main(int argc, const char* const* argv, Io& io);

// Prints `status` as "oddc: <message>" and returns its exit code (exit_code_for).
int report(Io& io, const Status& status);

// The handler of `run` (run_command.cpp).
boost::asio::awaitable<int> run_command(Context& context);

}  // namespace odd::oddc
