#include "common/status.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace odd {

Status errno_status(int err, std::string what) {
  what += ": ";
  what += std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return not_found(std::move(what));
    case EEXIST:
      return already_exists(std::move(what));
    case EACCES:
    case EPERM:
    case EROFS:
    case ELOOP:
      return permission_denied(std::move(what));
    default:
      return internal_error(std::move(what));
  }
}

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidArgument:
      return "invalid_argument";
    case Code::kNotFound:
      return "not_found";
    case Code::kAlreadyExists:
      return "already_exists";
    case Code::kFailedPrecondition:
      return "failed_precondition";
    case Code::kPermissionDenied:
      return "permission_denied";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kDeadlineExceeded:
      return "deadline_exceeded";
    case Code::kCancelled:
      return "cancelled";
    case Code::kInternal:
      return "internal";
  }
  return "internal";
}

Status Status::with_context(std::string_view context) const& {
  Status copy = *this;
  return std::move(copy).with_context(context);
}

Status Status::with_context(std::string_view context) && {
  if (!context.empty()) {
    message_.insert(0, ": ");
    message_.insert(0, context);
  }
  return std::move(*this);
}

std::string Status::to_string() const {
  std::string out(code_name(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

bool Status::retryable() const {
  return code_ == Code::kUnavailable || code_ == Code::kDeadlineExceeded;
}

void throw_exception_from_error(const Status& status, const boost::source_location&) {
  throw std::logic_error("unchecked error Result: " + status.to_string());
}

}  // namespace odd
