// Errors as values: Status (success or a message) and Result<T> (a value or
// a message). Both are [[nodiscard]] so an ignored error is a compile warning.
// Messages carry their own context ("open /x.db: disk I/O error"); callers
// add theirs with Status::context().
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace smtpscope {

class [[nodiscard]] Status {
 public:
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return is_ok(); }
  const std::string& message() const { return message_; }

  // Prefixes the message with what the caller was doing; a no-op on success.
  Status context(const std::string& what) const {
    return failed_ ? Status(what + ": " + message_) : *this;
  }

 private:
  Status() = default;
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status failure) : state_(std::move(failure)) {}  // NOLINT: must be an error

  bool is_ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  const std::string& message() const { return std::get<Status>(state_).message(); }
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(state_); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace smtpscope
