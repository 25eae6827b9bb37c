#include "logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>

namespace smtpscope {

Status setup_logging(const std::string& program, const std::string& level,
                     const std::string& target) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return Status::error("unknown log level \"" + level + "\"");
  }
  std::shared_ptr<spdlog::logger> logger;
  if (target == "syslog") {
    logger = std::make_shared<spdlog::logger>(
        program, std::make_shared<spdlog::sinks::syslog_sink_mt>(program, LOG_PID, LOG_MAIL, true));
    logger->set_pattern("%l: %v");
  } else if (target == "stderr") {
    logger = std::make_shared<spdlog::logger>(program,
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %n[%P] %l: %v");
  } else {
    return Status::error("unknown log target \"" + target + "\"");
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return Status::ok();
}

}  // namespace smtpscope
