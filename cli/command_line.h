// The command line's own rules, on top of CLI11: what --client accepts
// (client_address.h) and how a failed parse is told. Every usage error is
// printed to stderr and exits 2; a word where a command belongs is named
// ("unknown command \"bogus\""), not left as "A subcommand is required".
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

namespace smtpscope::cli {

// For every --client option.
const CLI::Validator& client_address_validator();

// Parses argv into app; nothing when the command should run, else the exit
// code after printing what went wrong (0 for --help and --version).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

}  // namespace smtpscope::cli
