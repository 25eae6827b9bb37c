#include "sql_connection.h"

namespace smtpscope::sql {

Statement& Statement::bind(int index, std::string_view text) {
  backend_->bind_text(index, text);
  return *this;
}

Statement& Statement::bind(int index, std::int64_t number) {
  backend_->bind_int(index, number);
  return *this;
}

Statement& Statement::bind(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind_null(index);
}

Statement& Statement::bind(int index, std::optional<std::int64_t> number) {
  return number ? bind(index, *number) : bind_null(index);
}

Statement& Statement::bind(int index, std::optional<double> number) {
  if (!number) return bind_null(index);
  backend_->bind_double(index, *number);
  return *this;
}

Statement& Statement::bind_null(int index) {
  backend_->bind_null(index);
  return *this;
}

Status Statement::run() {
  Result<bool> stepped = step();
  while (stepped && stepped.value()) stepped = step();
  reset();
  return stepped.status();
}

}  // namespace smtpscope::sql
