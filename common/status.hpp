#pragma once
// Status and Result<T>: how every part of odd reports an expected failure.
// A Status is a code from a small fixed set plus a human message that grows context as it
// travels up ("starting job test-arch: dockerd: No such image ... (HTTP 404)"). Values only;
// no I/O, safe to copy across threads.

#include <boost/system/result.hpp>
#include <string>
#include <string_view>

namespace odd {

enum class Code {
  kOk,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kPermissionDenied,
  kUnavailable,
  kDeadlineExceeded,
  kCancelled,
  kInternal,
};

// The stable snake_case name of a code, as used on the control socket ("not_found").
std::string_view code_name(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message with what the caller was doing: "context: message".
  Status with_context(std::string_view context) const&;
  Status with_context(std::string_view context) &&;

  // "not_found: message", for logs.
  std::string to_string() const;

  // Whether a retry with backoff may succeed (DESIGN §4): unavailable and deadline exceeded.
  bool retryable() const;

  friend bool operator==(const Status&, const Status&) = default;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status already_exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status failed_precondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status permission_denied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status deadline_exceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
inline Status cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status internal_error(std::string m) { return {Code::kInternal, std::move(m)}; }

// A failed system call: `what` names the call and its file ("opening /var/lib/odd/x"), errno's
// text follows. ENOENT and ENOTDIR are not_found; EEXIST already_exists; EACCES, EPERM, EROFS and
// ELOOP (a symlink refused by O_NOFOLLOW) permission_denied; anything else internal.
Status errno_status(int err, std::string what);

// Thrown only by Result<T>::value() on an error: a broken invariant in the caller.
[[noreturn]] void throw_exception_from_error(const Status& status,
                                             const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Status>;

}  // namespace odd
