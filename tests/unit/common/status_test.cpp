#include "common/status.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace odd {
namespace {

TEST_CASE("errno_status names the call, the file and errno's text") {
  const Status s = errno_status(ENOENT, "opening /var/lib/odd/runs/x/run.json");
  CHECK(s.code() == Code::kNotFound);
  CHECK(s.message() ==
        std::string("opening /var/lib/odd/runs/x/run.json: ") + std::strerror(ENOENT));
}

TEST_CASE("errno_status maps errno to the code a caller acts on") {
  struct Case {
    int err;
    Code code;
  };
  const Case cases[] = {
      {ENOENT, Code::kNotFound},        {ENOTDIR, Code::kNotFound},
      {EEXIST, Code::kAlreadyExists},   {EACCES, Code::kPermissionDenied},
      {EPERM, Code::kPermissionDenied}, {EROFS, Code::kPermissionDenied},
      {ELOOP, Code::kPermissionDenied}, {ENOSPC, Code::kInternal},
      {EIO, Code::kInternal},
  };
  for (const Case& c : cases) {
    CAPTURE(std::strerror(c.err));
    CHECK(errno_status(c.err, "writing f").code() == c.code);
  }
}

}  // namespace
}  // namespace odd
