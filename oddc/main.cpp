// oddc's main(): the process's streams, environment, working directory and terminal, handed to
// run_main().
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "oddc/commands.hpp"
#include "oddc/exit_codes.hpp"

namespace {

std::size_t terminal_columns() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(columns, &end, 10);
    if (end != columns && *end == '\0' && n > 0 && n < 10000) return n;
  }
  return 80;
}

bool draws_on_terminal() {
  if (::isatty(STDOUT_FILENO) == 0) return false;
  const char* term = std::getenv("TERM");
  return term != nullptr && std::string_view(term) != "dumb";
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  if (ec) {
    std::cerr << "oddc: cannot read the current directory: " << ec.message() << '\n';
    return odd::oddc::kExitUsage;
  }
  odd::oddc::Io io{std::cout,
                   std::cerr,
                   std::cin,
                   [](const std::string& name) -> std::optional<std::string> {
                     const char* value = std::getenv(name.c_str());
                     if (value == nullptr) return std::nullopt;
                     return std::string(value);
                   },
                   cwd.string(),
                   draws_on_terminal(),
                   terminal_columns()};
  return odd::oddc::run_main(argc, argv, io);
}
