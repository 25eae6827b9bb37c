#include "command_line.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <string>
#include <vector>

#include "client_address.h"
#include "text_escape.h"

namespace smtpscope::cli {
namespace {

constexpr int exit_usage = 2;

// A word given where a command was required, and the command it was for
// (the app itself, or `db`).
struct UnknownCommand {
  std::string word;
  const CLI::App* parent;
};

std::optional<UnknownCommand> unknown_command(const CLI::App& app) {
  const CLI::App* parent = &app;
  while (!parent->get_subcommands().empty()) parent = parent->get_subcommands().front();
  if (parent->get_require_subcommand_min() == 0) return std::nullopt;
  for (const std::string& word : app.remaining(true)) {
    if (!word.starts_with('-')) return UnknownCommand{word, parent};
  }
  return std::nullopt;
}

std::string describe(const UnknownCommand& unknown, const CLI::App& app) {
  std::vector<std::string> known;
  for (const CLI::App* command :
       unknown.parent->get_subcommands([](const CLI::App*) { return true; })) {
    known.push_back(command->get_name());
  }
  const bool top = unknown.parent == &app;
  return fmt::format("unknown command \"{}\" (commands{}: {}; see smtpscope{} --help)",
                     printable(unknown.word, 100), top ? "" : " of " + unknown.parent->get_name(),
                     fmt::join(known, ", "), top ? "" : " " + unknown.parent->get_name());
}

}  // namespace

const CLI::Validator& client_address_validator() {
  static const CLI::Validator validator(
      [](const std::string& text) {
        const Status valid = check_client_address(text);
        return valid ? std::string() : valid.message();
      },
      "ADDRESS");
  return validator;
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (const auto unknown = unknown_command(app); unknown && e.get_exit_code() != 0) {
      std::cerr << "smtpscope: " << describe(*unknown, app) << '\n';
      return exit_usage;
    }
    const int code = app.exit(e);
    return code == 0 ? 0 : exit_usage;
  }
}

}  // namespace smtpscope::cli
