// The integration tests' main: doctest's, after logging is set up from $ODD_TEST_LOG_LEVEL
// (default "warn") so a failing test can be rerun with the engine's debug output.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "common/logging.hpp"

int main(int argc, char** argv) {
  const char* level = std::getenv("ODD_TEST_LOG_LEVEL");
  odd::Status s = odd::init_logging(level != nullptr && *level != '\0' ? level : "warn");
  if (!s.ok()) {
    std::cerr << "odd_integration_tests: " << s.message() << "\n";
    return 2;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
