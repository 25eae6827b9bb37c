// The metrics the daemons export: the store's (queue, drops by bound,
// batches, commit latency, events recorded by source and stage), the milter
// recorder's callbacks and open sessions, the policy server's requests by
// state and action, and the `smtpscope metrics` population text.
#include <gtest/gtest.h>

#include "config.h"
#include "metrics_command.h"
#include "metrics_registry.h"
#include "policy_service.h"
#include "recorder.h"
#include "store.h"
#include "test_support.h"

namespace smtpscope {
namespace {

using testing::FakeClock;
using testing::TempDir;
using testing::VectorSink;

bool contains(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

Event milter_event(Stage stage, int stream) {
  Event e;
  e.stage = stage;
  e.time_us = 1000 + stream;
  e.stream = "test:" + std::to_string(stream);
  if (stage == Stage::connect) e.add("client_addr", "192.0.2.7");
  return e;
}

TEST(StoreMetrics, CountsRecordedEventsBatchesAndQueue) {
  TempDir dir;
  FakeClock clock;
  MetricsRegistry registry;
  StoreOptions options;
  options.path = dir.file("m.db");
  options.batch_interval = std::chrono::milliseconds(10);
  options.metrics = &registry;
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store) << store.message();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store.value()->enqueue(milter_event(Stage::connect, i)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store.value()->enqueue(milter_event(Stage::helo, i)));
  store.value()->stop();
  const std::string text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_events_recorded_total{source=\"milter\",stage=\"connect\"} 5"))
      << text;
  EXPECT_TRUE(contains(text, "smtpscope_events_recorded_total{source=\"milter\",stage=\"helo\"} 3"));
  EXPECT_TRUE(contains(text, "smtpscope_events_enqueued_total 8"));
  EXPECT_TRUE(contains(text, "smtpscope_queue_events 0"));
  EXPECT_TRUE(contains(text, "smtpscope_queue_bytes 0"));
  EXPECT_TRUE(contains(text, "smtpscope_events_dropped_total{cause=\"queue_events\"} 0"));
  EXPECT_TRUE(contains(text, "smtpscope_events_dropped_total{cause=\"queue_bytes\"} 0"));
  EXPECT_TRUE(contains(text, "smtpscope_database_errors_total 0"));
  EXPECT_TRUE(contains(text, "smtpscope_store_batch_events_bucket{le=\"+Inf\"} " +
                                 std::to_string(store.value()->stats().batches)))
      << text;
  EXPECT_TRUE(contains(text, "smtpscope_store_commit_seconds_count " +
                                 std::to_string(store.value()->stats().batches)))
      << text;
}

// Drops are told apart by the bound that was reached.
TEST(StoreMetrics, DropsByCause) {
  TempDir dir;
  FakeClock clock;
  MetricsRegistry registry;
  StoreOptions options;
  options.path = dir.file("d.db");
  options.queue_capacity = 2;
  options.queue_bytes = std::size_t{64} * 1024 * 1024;
  options.batch_interval = std::chrono::hours(1);  // nothing leaves the queue
  options.batch_size = 1000;
  options.metrics = &registry;
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store) << store.message();
  Event big = milter_event(Stage::connect, 99);
  big.argument.assign(std::size_t{65} * 1024 * 1024, 'x');  // over queue_bytes (64 MiB)
  EXPECT_FALSE(store.value()->enqueue(std::move(big)));
  for (int i = 0; i < 5; ++i) (void)store.value()->enqueue(milter_event(Stage::connect, i));
  std::string text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_queue_events 2")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_events_dropped_total{cause=\"queue_events\"} 3")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_events_dropped_total{cause=\"queue_bytes\"} 1")) << text;
  store.value()->stop();
}

TEST(MilterMetrics, CallbacksByStageAndOpenSessions) {
  FakeClock clock;
  VectorSink sink;
  MetricsRegistry registry;
  milter::Recorder recorder(std::make_shared<const Config>(default_config()), clock, sink);
  recorder.export_metrics(registry);
  struct NoMacros final : milter::MacroSource {
    std::optional<std::string> get(std::string_view) const override { return std::nullopt; }
  } macros;
  auto a = recorder.new_connection(0);
  auto b = recorder.new_connection(0);
  recorder.connect(*a, "a.example", {"192.0.2.1", 1}, macros);
  recorder.connect(*b, "b.example", {"192.0.2.2", 2}, macros);
  recorder.helo(*a, "a.example", macros);
  recorder.body(*a, 10);
  std::string text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_milter_callbacks_total{stage=\"connect\"} 2")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_milter_callbacks_total{stage=\"helo\"} 1"));
  EXPECT_TRUE(contains(text, "smtpscope_milter_callbacks_total{stage=\"body\"} 1"));
  EXPECT_TRUE(contains(text, "smtpscope_milter_callbacks_total{stage=\"mail\"} 0"));
  EXPECT_TRUE(contains(text, "smtpscope_sessions_open{source=\"milter\"} 2"));
  recorder.close(*a);
  auto never_connected = recorder.new_connection(0);
  recorder.close(*never_connected);  // counted as a callback, not as a session
  text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_sessions_open{source=\"milter\"} 1")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_milter_callbacks_total{stage=\"close\"} 2"));
}

TEST(PolicyMetrics, LabelsAreBoundedSets) {
  EXPECT_EQ(policy::protocol_state_label("RCPT"), "RCPT");
  EXPECT_EQ(policy::protocol_state_label("END-OF-MESSAGE"), "END-OF-MESSAGE");
  EXPECT_EQ(policy::protocol_state_label("rcpt"), "other");
  EXPECT_EQ(policy::protocol_state_label("192.0.2.1"), "other");
  EXPECT_EQ(policy::protocol_state_label(""), "other");
  EXPECT_EQ(policy::action_label("DUNNO"), "DUNNO");
  EXPECT_EQ(policy::action_label("reject go away"), "REJECT");
  EXPECT_EQ(policy::action_label("defer_if_permit later"), "DEFER_IF_PERMIT");
  EXPECT_EQ(policy::action_label("550 5.7.1 no"), "5xx");
  EXPECT_EQ(policy::action_label("450 4.7.1 later"), "4xx");
  EXPECT_EQ(policy::action_label("650 x"), "other");
  EXPECT_EQ(policy::action_label("PREPEND X-Client: 192.0.2.1"), "PREPEND");
  EXPECT_EQ(policy::action_label("192.0.2.1"), "other");
}

TEST(PolicyMetrics, RequestsByStateAndAction) {
  FakeClock clock;
  VectorSink sink;
  MetricsRegistry registry;
  policy::PolicyService service(clock, sink, 1024, std::make_shared<const policy::RuleSet>(),
                                nullptr);
  service.export_metrics(registry);
  for (const char* state : {"RCPT", "RCPT", "DATA", "weird"}) {
    policy::Request request;
    request.attributes = {{"request", "smtpd_access_policy"},
                          {"protocol_state", state},
                          {"client_address", "192.0.2.9"}};
    EXPECT_EQ(service.answer(std::move(request), "policy:1:1"), "DUNNO");
  }
  const std::string text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_policy_requests_total{protocol_state=\"RCPT\",action=\"DUNNO\"} 2"))
      << text;
  EXPECT_TRUE(contains(text, "smtpscope_policy_requests_total{protocol_state=\"DATA\",action=\"DUNNO\"} 1"));
  EXPECT_TRUE(contains(text, "smtpscope_policy_requests_total{protocol_state=\"other\",action=\"DUNNO\"} 1"));
  EXPECT_EQ(text.find("192.0.2.9"), std::string::npos) << "no client address in a daemon's labels";
}

TEST(MetricsConfig, ListenKeysAreValidated) {
  auto on = parse_config("metrics:\n  milter_listen: \"9187\"\n  policy_listen: \"[::1]:9188\"\n",
                         "m.yaml");
  ASSERT_TRUE(on) << on.message();
  EXPECT_EQ(on.value().metrics.milter_listen, "9187");
  EXPECT_EQ(on.value().metrics.policy_listen, "[::1]:9188");
  EXPECT_EQ(default_config().metrics.milter_listen, "");
  auto bad = parse_config("metrics:\n  milter_listen: \"localhost:http\"\n", "m.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("metrics.milter_listen"), std::string::npos) << bad.message();
}

// `smtpscope metrics`: every pattern and quirk has a series; clients only
// up to top-N, their addresses escaped.
TEST(PopulationMetrics, PatternsQuirksAndTopClients) {
  analysis::PatternSet patterns;
  patterns.patterns.resize(2);
  patterns.patterns[0].name = "lost-connection";
  patterns.patterns[1].name = "timeout";
  cli::Population population;
  auto& clients = population.clients;
  clients.resize(3);
  clients[0].client_addr = "192.0.2.1";
  clients[0].anomaly.score = 2.5;
  clients[0].session_count = 3;
  clients[1].client_addr = "bad\"addr\n";
  clients[1].anomaly.score = 1;
  clients[1].session_count = 1;
  clients[2].client_addr = "192.0.2.3";
  population.sessions = 4;
  population.sessions_with_pattern = {{"lost-connection", 2}, {"timeout", 1}};
  population.sessions_with_quirk = {{"bare-ip", 1}};
  const std::string text = cli::render_population_metrics(population, patterns, 2, 1700000000.5);
  EXPECT_TRUE(contains(text, "smtpscope_analysed_sessions 4")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_analysed_clients 3"));
  EXPECT_TRUE(contains(text, "smtpscope_pattern_sessions{pattern=\"lost-connection\"} 2"));
  EXPECT_TRUE(contains(text, "smtpscope_pattern_sessions{pattern=\"timeout\"} 1"));
  EXPECT_TRUE(contains(text, "smtpscope_helo_quirk_sessions{quirk=\"bare-ip\"} 1"));
  EXPECT_TRUE(contains(text, "smtpscope_helo_quirk_sessions{quirk=\"empty\"} 0"));
  EXPECT_TRUE(contains(text, "smtpscope_client_anomaly_score{client=\"192.0.2.1\"} 2.5"));
  EXPECT_TRUE(contains(text, "smtpscope_client_anomaly_score{client=\"bad\\\"addr\\n\"} 1")) << text;
  EXPECT_EQ(text.find("192.0.2.3"), std::string::npos) << "beyond --top";
  EXPECT_TRUE(contains(text, "smtpscope_metrics_generated_timestamp_seconds 1700000000.5"));
}

}  // namespace
}  // namespace smtpscope
