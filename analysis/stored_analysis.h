// The analysis stored once per session (schema 8): when a session ends,
// whichever process recorded its end (the daemons' analysis thread,
// `smtpscope ingest`, `watch`, or a command that finds work left) analyses
// it (stage string, facts, HELO quirks, fingerprint, patterns) into
// session_analysis; the schema's triggers keep client_day_shapes, the
// per-client counts the views read. Evidence that arrives later (the log
// after the milter's close) re-analyses only the sessions it touched: every
// event up to analysis_state's event_watermark has been looked at.
// What the analysis was made with (program version, patterns' digest) is
// stored, so a changed patterns file is noticed and `smtpscope analyse`
// re-analyses what is stored, resumably.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "patterns.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope::analysis {

// Bumped when a change to the analysis code changes what it concludes.
inline constexpr int analysis_version = 3;  // 2: the log's SASL, qmgr, TLS and PTR facts; 3: a client's timing over all its earlier sessions

struct AnalysisRules {
  PatternSet patterns;
  std::string digest;  // of the patterns' text: which rules made an analysis
};

// A connection to the (already migrated) database at path for the analysis
// to write through: synchronous = NORMAL like the daemons' writers (WAL keeps
// it consistent; a power cut may lose the last passes, which the watermarks
// then redo), and a page cache that holds a whole pass's changed pages (with
// SQLite's 2 MiB default a 5,000-session pass spilled pages into the WAL
// before its commit: measured 25% of an ingest's analysis).
Result<std::unique_ptr<sqlite::Database>> open_for_analysis(const std::string& path,
                                                           int busy_timeout_ms);
// The same on a connection already open (`smtpscope analyse`'s).
Status tune_for_analysis(sqlite::Database& db);

// The patterns in `file`, or the built-in ones when it is empty.
Result<AnalysisRules> load_rules(const std::string& file);

// Called with (sessions done, sessions in all) while a long analysis works.
using AnalyseProgress = std::function<void(std::int64_t, std::int64_t)>;

// How analyse_pending takes its pass.
struct PendingPass {
  // Also the sessions still open (a command that shows them); else they
  // wait in analysis_open for their end.
  bool open_too = false;
  // A session waits too while an earlier session of its client waits (still
  // open, or itself waiting), and is taken by a later pass: passes taken
  // while the log is still being read conclude what one pass at its end
  // would (a session's timing counts its client's earlier sessions).
  bool in_order = false;
  // Reads the sessions and concludes before taking the write lock, so a
  // writer beside it (the ingest storing the log) waits only while the rows
  // are written; concluded again under the lock if another analysis wrote
  // in between.
  bool read_first = false;
  // When set, held around each write transaction: the ingest takes it
  // around its own, so neither sleeps in SQLite's busy handler.
  std::mutex* write_lock = nullptr;
  AnalyseProgress progress;
};

// Analyses the sessions that have events the analysis has not seen (those
// that have ended, or all of them with open_too: a command that shows
// sessions still open), and those an in-order pass left waiting that have
// ended, and moves the watermark past those events; 5,000 sessions per
// write transaction. Returns how many sessions were analysed.
Result<std::int64_t> analyse_pending(sqlite::Database& db, const AnalysisRules& rules,
                                     const PendingPass& pass);
Result<std::int64_t> analyse_pending(sqlite::Database& db, const AnalysisRules& rules,
                                     bool open_too, const AnalyseProgress& progress = {});

// True when an event or a session exists past the watermarks, or a session
// an in-order pass left waiting has ended: something to analyse.
Result<bool> analysis_behind(sqlite::Database& db);

// Why the stored analysis does not match `rules` and this program (other
// patterns, another analysis version), or nothing when it does.
Result<std::optional<std::string>> stale_reason(sqlite::Database& db, const AnalysisRules& rules);

// Re-analyses every stored session that began at or after since_us (all
// when unset) with `rules`, oldest first, resuming where an interrupted run
// stopped when the rules are the same; then records the rules as those of
// the stored analysis (and, over all sessions, moves the watermark past the
// events it saw). Returns how many sessions were analysed.
Result<std::int64_t> analyse_stored(sqlite::Database& db, const AnalysisRules& rules,
                                    std::optional<std::int64_t> since_us,
                                    const AnalyseProgress& progress);

}  // namespace smtpscope::analysis
