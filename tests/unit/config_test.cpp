#include "config.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>

namespace smtpscope {
namespace {

const std::string example_path = std::string(SMTPSCOPE_SOURCE_DIR) + "/conf/smtpscope.yaml";

TEST(Config, DefaultsComeFromTheTable) {
  const Config c = default_config();
  EXPECT_EQ(c.database.path, "/var/lib/smtpscope/smtpscope.db");
  EXPECT_EQ(c.store.batch_size, 4096u);
  EXPECT_EQ(c.milter.socket_mode, 0660u);
  EXPECT_EQ(c.milter.headers, (std::vector<std::string>{"X-Mailer", "User-Agent"}));
  EXPECT_FALSE(c.milter.record_body_size);  // bodies are skipped unless asked for
  EXPECT_EQ(c.logging.level, "info");
}

// The example file documents every key with its real default.
TEST(Config, ExampleFileListsEveryKeyWithItsDefault) {
  const YAML::Node example = YAML::LoadFile(example_path);
  std::set<std::string> in_file;
  for (const auto& section : example) {
    for (const auto& entry : section.second) {
      in_file.insert(section.first.as<std::string>() + "." + entry.first.as<std::string>());
    }
  }
  std::set<std::string> in_table;
  for (const auto& key : config_keys()) {
    in_table.insert(std::string(key.path));
    const auto dot = key.path.find('.');
    const YAML::Node value = example[std::string(key.path.substr(0, dot))]
                                    [std::string(key.path.substr(dot + 1))];
    ASSERT_TRUE(value.IsDefined()) << key.path;
    EXPECT_EQ(YAML::Dump(value), YAML::Dump(YAML::Load(std::string(key.default_value))))
        << key.path;
    EXPECT_FALSE(key.doc.empty()) << key.path;
  }
  EXPECT_EQ(in_file, in_table);
  auto loaded = load_config(example_path);
  ASSERT_TRUE(loaded) << loaded.message();
}

TEST(Config, EmptyFileMeansDefaults) {
  auto c = parse_config("", "empty.yaml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().store.queue_capacity, default_config().store.queue_capacity);
}

TEST(Config, ValuesOverrideDefaults) {
  auto c = parse_config("milter:\n  socket: inet:9911@127.0.0.1\n  socket_mode: \"0666\"\n"
                        "  headers: [X-Mailer]\nstore:\n  batch_size: 10\n",
                        "x.yaml");
  ASSERT_TRUE(c) << c.message();
  EXPECT_EQ(c.value().milter.socket, "inet:9911@127.0.0.1");
  EXPECT_EQ(c.value().milter.socket_mode, 0666u);
  EXPECT_EQ(c.value().store.batch_size, 10u);
}

struct BadConfig {
  const char* yaml;
  const char* expected_message;
};

class ConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrors, NameFileLineKeyAndProblem) {
  auto c = parse_config(GetParam().yaml, "conf.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.message(), GetParam().expected_message);
}

INSTANTIATE_TEST_SUITE_P(
    Messages, ConfigErrors,
    ::testing::Values(
        BadConfig{"store:\n  batch_size: 0\n",
                  "conf.yaml:2: store.batch_size: 0 is out of range [1, 1000000]"},
        BadConfig{"store:\n  batch_size: many\n",
                  "conf.yaml:2: store.batch_size: expected an integer, got \"many\""},
        BadConfig{"milter:\n  sockett: unix:/x\n", "conf.yaml:2: milter.sockett: unknown key"},
        BadConfig{"milter:\n  socket_mode: \"0999\"\n",
                  "conf.yaml:2: milter.socket_mode: expected an octal mode such as \"0660\", "
                  "got \"0999\""},
        BadConfig{"logging:\n  level: loud\n",
                  "conf.yaml:2: logging.level: expected one of: trace, debug, info, warn, error"},
        BadConfig{"milter:\n  headers: X-Mailer\n",
                  "conf.yaml:2: milter.headers: expected a list, e.g. [a, b]"},
        BadConfig{"milter:\n  record_body_size: maybe\n",
                  "conf.yaml:2: milter.record_body_size: expected true or false"},
        BadConfig{"milter: [1, 2]\n", "conf.yaml:1: milter: expected a mapping of keys"},
        BadConfig{"- a\n- b\n", "conf.yaml: expected a mapping of sections"},
        BadConfig{"store:\n  batch_size: [1\n", "conf.yaml:3: end of sequence flow not found"},
        BadConfig{"store:\n  batch_size: 1\n  batch_size: 2\n",
                  "conf.yaml:3: key \"batch_size\" appears twice in one mapping"},
        BadConfig{"store:\n  batch_size: 1\nlogging:\n  level: info\nstore:\n  batch_size: 2\n",
                  "conf.yaml:5: key \"store\" appears twice in one mapping"}),
    [](const ::testing::TestParamInfo<BadConfig>& param) {
      return "case" + std::to_string(param.index);
    });

TEST(Config, MissingFileIsAClearError) {
  auto c = load_config("/nonexistent/smtpscope.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.message(), "/nonexistent/smtpscope.yaml: cannot read the file");
}

}  // namespace
}  // namespace smtpscope
