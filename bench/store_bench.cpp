// The store alone (issue 6), with Google Benchmark: how many milter events
// per second the real writer thread commits to SQLite, and what an enqueue
// costs the callback that makes it (p50/p99 in nanoseconds). Each session
// is the seven events of an ordinary message as the milter records them.
// Also the policy server's events per second (issue 3).
// Usage: store_bench [--benchmark_...]; the database goes to $TMPDIR.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "clock.h"
#include "policy_event.h"
#include "policy_request.h"
#include "policy_request_text.h"
#include "store.h"

namespace {

using namespace smtpscope;

std::vector<Event> session_events(int n) {
  const std::string stream = "milter:1:" + std::to_string(n);
  const std::int64_t t0 = 1'780'000'000'000'000 + std::int64_t{n} * 1000;
  auto event = [&](Stage stage, std::int64_t offset_us, std::uint32_t transaction,
                   std::string argument) {
    Event e;
    e.stage = stage;
    e.time_us = t0 + offset_us;
    e.stream = stream;
    e.transaction = transaction;
    e.argument = std::move(argument);
    return e;
  };
  std::vector<Event> events;
  Event connect = event(Stage::connect, 0, 0, "");
  connect.add("client_addr", "192.0.2." + std::to_string(n % 250));
  connect.add("client_port", std::to_string(1024 + n % 60000));
  connect.add("client_name", "unknown");
  connect.add("server_addr", "127.0.0.1");
  connect.add("server_port", "25");
  events.push_back(std::move(connect));
  events.push_back(event(Stage::helo, 100, 0, "mail.sender.example"));
  events.push_back(event(Stage::mail, 200, 1, "<a@sender.example>"));
  events.push_back(event(Stage::rcpt, 300, 1, "<b@test.example>"));
  events.push_back(event(Stage::data, 400, 1, ""));
  Event eom = event(Stage::eom, 500, 1, "");
  eom.add("queue_id", "4F1C2A0D" + std::to_string(n));
  events.push_back(std::move(eom));
  events.push_back(event(Stage::close, 600, 0, ""));
  return events;
}

std::string fresh_database(const char* name) {
  const auto path = std::filesystem::temp_directory_path() / name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  return path.string();
}

// Sustained events/s: the producer enqueues `events` as fast as it can into
// a fresh store whose queue is large enough that nothing is dropped; each
// iteration ends when all is committed.
void commit_flat_out(benchmark::State& state, const std::vector<Event>& events,
                     const char* database, const std::string& source) {
  SystemClock clock;
  std::uint64_t written = 0;
  for (auto _ : state) {
    StoreOptions options;
    options.path = fresh_database(database);
    options.queue_capacity = 10'000'000;
    options.queue_bytes = std::size_t{16} * 1024 * 1024 * 1024;  // held by count alone
    options.drop_source = source;
    auto store = Store::open(options, clock);
    if (!store) {
      state.SkipWithError(store.message().c_str());
      return;
    }
    for (const Event& e : events) store.value()->enqueue(e);
    store.value()->stop();
    const StoreStats stats = store.value()->stats();
    if (stats.dropped != 0 || stats.written != stats.enqueued) state.SkipWithError("events lost");
    written += stats.written;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(written));
}

void StoreEventsPerSecond(benchmark::State& state) {
  std::vector<Event> prepared;
  for (int n = 0; n < static_cast<int>(state.range(0)); ++n) {
    for (Event& e : session_events(n)) prepared.push_back(std::move(e));
  }
  commit_flat_out(state, prepared, "smtpscope-store-bench.db", "milter");
}
BENCHMARK(StoreEventsPerSecond)->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The policy server's events (issue 3): the ~700-byte RCPT requests of
// bench/policy_load from 4 connections, parsed and turned into events by
// the server's own code, committed flat out on an otherwise idle core.
// The most requests/s the policy server could record on this machine.
void StorePolicyEventsPerSecond(benchmark::State& state) {
  constexpr int connections = 4;
  const long requests = state.range(0);
  std::vector<Event> prepared;
  for (long n = 0; n < requests / connections; ++n) {
    for (int c = 0; c < connections; ++c) {
      policy::RequestParser parser(policy::Limits{});
      std::vector<policy::Request> parsed;
      if (parser.feed(policy_request_text(c, n), parsed) != policy::ParseError::none) {
        state.SkipWithError("request did not parse");
        return;
      }
      prepared.push_back(policy::to_event(std::move(parsed.front()),
                                          "policy:1:" + std::to_string(c),
                                          1'780'000'000'000'000 + n * 1000, 1024));
    }
  }
  commit_flat_out(state, prepared, "smtpscope-policy-store-bench.db", "policy");
}
BENCHMARK(StorePolicyEventsPerSecond)->Arg(400'000)->Unit(benchmark::kMillisecond)->UseRealTime();

// The cost one enqueue adds to a milter callback, while the writer commits
// in its thread: each call timed, percentiles reported as counters.
void EnqueueLatency(benchmark::State& state) {
  constexpr int sessions = 20'000;
  std::vector<Event> prepared;
  for (int n = 0; n < sessions; ++n) {
    for (Event& e : session_events(n)) prepared.push_back(std::move(e));
  }
  SystemClock clock;
  std::vector<double> nanoseconds;
  nanoseconds.reserve(prepared.size() * 4);
  for (auto _ : state) {
    StoreOptions options;
    options.path = fresh_database("smtpscope-enqueue-bench.db");
    auto store = Store::open(options, clock);
    if (!store) {
      state.SkipWithError(store.message().c_str());
      return;
    }
    for (const Event& e : prepared) {
      Event copy = e;  // the callback builds its event; only the enqueue is timed
      const auto started = std::chrono::steady_clock::now();
      store.value()->enqueue(std::move(copy));
      nanoseconds.push_back(std::chrono::duration<double, std::nano>(
                                std::chrono::steady_clock::now() - started)
                                .count());
      // Paced like a busy milter (~140k events/s), not flat out.
      const auto until = started + std::chrono::microseconds(7);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    store.value()->stop();
  }
  std::sort(nanoseconds.begin(), nanoseconds.end());
  auto at = [&](double q) { return nanoseconds[static_cast<std::size_t>(q * (nanoseconds.size() - 1))]; };
  state.counters["p50_ns"] = at(0.50);
  state.counters["p99_ns"] = at(0.99);
  state.counters["p999_ns"] = at(0.999);
  state.counters["max_ns"] = nanoseconds.back();
}
BENCHMARK(EnqueueLatency)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
