#include "ingester.h"

#include <sys/stat.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "event_writer.h"
#include "journal_reader.h"
#include "log_event.h"
#include "log_reader.h"
#include "postfix_message.h"
#include "peer_name_check.h"
#include "postscreen_handoff.h"
#include "queue_join.h"
#include "smtp_client_message.h"
#include "store.h"
#include "syslog_line.h"
#include "text_escape.h"

namespace smtpscope::ingest {
namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// BSD timestamps carry no year: --year gives the first line's, else the
// file's mtime bounds it.
YearTracker year_tracker(const std::string& path, const IngestOptions& options) {
  if (options.year) return YearTracker::starting_in(*options.year);
  struct stat info{};
  if (::stat(path.c_str(), &info) == 0) {
    return YearTracker(static_cast<std::int64_t>(info.st_mtime) * 1'000'000);
  }
  return YearTracker(now_us());
}

// How reading one file (one rotation generation) ended.
enum class FileEnd { done, replaced, rewritten };

struct FileRecord {
  std::int64_t offset = 0;
  bool known = false;
  std::string cursor;  // a journal's: the last entry committed
};

}  // namespace

struct Ingester::Impl {
  IngestOptions options;
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<EventWriter> writer;
  std::optional<sqlite::Statement> find_file;
  std::optional<sqlite::Statement> save_file;
  std::vector<Event> pending;
  std::optional<sqlite::Statement> insert_remote;
  struct PendingRemote {
    std::int64_t time_us;
    std::string name, addr, kind, state, status, queue_id, recipient, dsn, reason;
    std::optional<std::int64_t> port;
    bool probe;
  };
  std::vector<PendingRemote> pending_remote;
  PostscreenHandoff handoff;  // smtpd sessions that postscreen handed over
  PeerNameCheck name_checks;  // smtpd's warnings about a client's PTR name
  QueueJoin queues;           // cleanup's and qmgr's lines to smtpd's sessions
  std::int64_t clock_us = now_us();  // "now" for plausible_time(), renewed per batch

  Result<FileRecord> lookup(const std::string& fingerprint) {
    find_file->bind(1, fingerprint);
    auto row = find_file->step();
    if (!row) return row.status();
    FileRecord record;
    if (row.value()) {
      record.known = true;
      record.offset = find_file->column_int(0);
      record.cursor = find_file->column_text(1);
    }
    find_file->reset();
    return record;
  }

  // Commits the pending events and the position they end at, atomically.
  Status commit(const std::string& fingerprint, const std::string& path, std::int64_t offset,
                const IngestCounts& delta, const std::optional<std::string>& cursor = {}) {
    std::unique_lock<std::mutex> writing;
    if (options.write_lock) writing = std::unique_lock(*options.write_lock);
    if (Status begun = db->exec("BEGIN IMMEDIATE"); !begun) return begun.context("begin");
    auto saved = writer->checkpoint();
    Status status = Status::ok();
    for (const Event& event : pending) {
      status = writer->apply(event);
      if (!status) break;
    }
    for (const auto& r : pending_remote) {
      if (!status) break;
      auto text = [](const std::string& v) {
        return v.empty() ? std::optional<std::string>() : std::optional<std::string>(v);
      };
      status = insert_remote->bind(1, r.time_us)
                   .bind(2, text(r.name))
                   .bind(3, r.addr)
                   .bind(4, r.port)
                   .bind(5, r.kind)
                   .bind(6, text(r.state))
                   .bind(7, text(r.status))
                   .bind(8, text(r.queue_id))
                   .bind(9, text(r.recipient))
                   .bind(10, text(r.dsn))
                   .bind(11, std::int64_t{r.probe ? 1 : 0})
                   .bind(12, text(r.reason))
                   .run();
    }
    if (status) {
      status = save_file->bind(1, fingerprint)
                   .bind(2, path)
                   .bind(3, offset)
                   .bind(4, static_cast<std::int64_t>(delta.lines))
                   .bind(5, static_cast<std::int64_t>(delta.parsed))
                   .bind(6, static_cast<std::int64_t>(delta.skipped))
                   .bind(7, static_cast<std::int64_t>(delta.malformed))
                   .bind(8, now_us())
                   .bind(9, cursor)
                   .run();
    }
    if (status) status = db->exec("COMMIT");
    if (!status) {
      (void)db->exec("ROLLBACK");
      writer->restore(std::move(saved));
      return status.context("commit batch");
    }
    pending.clear();
    pending_remote.clear();
    queues.committed();
    if (writing) writing.unlock();
    if (options.committed) options.committed();
    return Status::ok();
  }

  void take(std::string_view line, YearTracker& years, IngestCounts& counts) {
    counts.lines += 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      counts.skipped += 1;
      return;
    }
    SyslogFault fault{};
    const auto syslog = parse_syslog_line(line, years, &fault);
    if (!syslog) {
      counts.malformed += 1;
      if (fault == SyslogFault::time && counts.bad_time++ == 0) {
        counts.first_bad_time = bounded(line, 256);
      }
      return;
    }
    take_syslog(*syslog, line, counts);
  }

  // A line of Postfix's read from a file or the journal; `raw` is quoted
  // when its time is out of range.
  void take_syslog(const SyslogLine& syslog, std::string_view raw, IngestCounts& counts) {
    if (!plausible_time(syslog.time_us, clock_us)) {
      counts.malformed += 1;
      if (counts.out_of_range++ == 0) counts.first_out_of_range = bounded(raw, 256);
      return;
    }
    if (syslog.daemon == "smtp" || syslog.daemon == "lmtp") {
      take_remote(syslog, counts);
      return;
    }
    if (syslog.daemon == "smtpd") {
      if (const auto check = parse_name_check(syslog.message)) {
        name_checks.remember(syslog, *check, options.max_value_bytes);
        counts.parsed += 1;
        return;
      }
    }
    ParsedMessage parsed = parse_postfix_message(syslog.daemon, syslog.message);
    switch (parsed.kind) {
      case MessageKind::skipped: counts.skipped += 1; return;
      case MessageKind::malformed: counts.malformed += 1; return;
      case MessageKind::record:
        take_record(syslog, parsed.record, counts);
        return;
    }
  }

  // smtpd's and postscreen's records are events of their process's stream;
  // cleanup's and qmgr's join the smtpd session of their queue id.
  void take_record(const SyslogLine& syslog, LogRecord& record, IngestCounts& counts) {
    if (syslog.daemon == "qmgr") {
      const bool joined = queues.add_sender(syslog.host, record, pending, options.max_value_bytes);
      (joined ? counts.parsed : counts.skipped) += 1;
      return;
    }
    handoff.observe(syslog, record);
    Event event = to_event(syslog, record, options.max_value_bytes);
    if (syslog.daemon == "cleanup") {
      const auto queue_id = event.attribute("queue_id");
      if (!queue_id || !queues.join(syslog.host, *queue_id, event)) {
        counts.skipped += 1;  // a message no smtpd session of this log received
        return;
      }
    } else if (record.stage == Stage::connect && syslog.daemon == "smtpd") {
      name_checks.attach(syslog, event);
    } else if (record.stage == Stage::queued) {
      queues.remember(syslog.host, event, pending.size());
    }
    counts.parsed += 1;
    pending.push_back(std::move(event));
  }

  // The journal's entries from where the last run stopped (its cursor),
  // committed in batches with the cursor of the last one; in follow mode
  // on as the journal grows until `stop`.
  Result<IngestCounts> read_journal(const JournalSelection& selection,
                                    const std::atomic<bool>& stop) {
    auto opened = JournalReader::open(selection, options.max_line_bytes);
    if (!opened) return opened.status();
    JournalReader& journal = *opened.value();
    IngestCounts total, batch;
    JournalEntry entry;
    std::string fingerprint;  // journal:<machine id>:<selection>, known at the first entry
    const std::string selected = selection.unit.empty() ? "postfix" : selection.unit;
    const std::string name = selection.path.empty() ? "journal" : selection.path;
    std::string last_cursor;
    bool had_cursor = false;
    auto flush = [&]() -> Status {
      if (fingerprint.empty() || (batch.lines == 0 && pending.empty())) return Status::ok();
      if (Status s = commit(fingerprint, name, 0, batch, last_cursor); !s) return s;
      total.add(batch);
      batch = IngestCounts{};
      clock_us = now_us();
      if (options.progress) options.progress(0, total.lines);
      return Status::ok();
    };
    total.files = 1;
    for (;;) {
      auto got = journal.next(entry);
      if (!got) return got.status().context(name);
      if (got.value() == JournalReader::Next::none) {
        if (Status s = flush(); !s) return s;
        if (!options.follow || stop) break;
        if (Status s = journal.wait(options.poll_interval * 4); !s) return s;
        continue;
      }
      if (fingerprint.empty()) {
        fingerprint = "journal:" + std::string(entry.machine_id) + ":" + selected;
        auto record = lookup(fingerprint);
        if (!record) return record.status();
        if (!record.value().cursor.empty()) {
          auto resumed = journal.seek_after(record.value().cursor);
          if (!resumed) return resumed.status().context(name);
          had_cursor = true;
          continue;  // from the entry after the cursor
        }
      }
      take_entry(entry, batch);
      auto cursor = journal.cursor();
      if (!cursor) return cursor.status();
      last_cursor = std::move(cursor).value();
      if (batch.lines >= options.batch_lines) {
        if (Status s = flush(); !s) return s;
        if (stop) break;
      }
    }
    total.already_complete = had_cursor && total.lines == 0;
    return total;
  }

  void take_entry(const JournalEntry& entry, IngestCounts& counts) {
    counts.lines += 1;
    SyslogLine line;
    line.time_us = entry.time_us;
    line.whole_seconds = false;
    line.host = entry.host;
    line.program = entry.identifier;
    const std::size_t slash = line.program.rfind('/');
    line.daemon = slash == std::string_view::npos ? line.program : line.program.substr(slash + 1);
    line.pid = entry.pid;
    line.message = entry.message;
    if (line.message.size() > options.max_line_bytes) {
      counts.malformed += 1;
      counts.too_long += 1;
      return;
    }
    take_syslog(line, entry.message, counts);
  }

  // Postfix as a client: what its smtp client says about remote servers.
  void take_remote(const SyslogLine& line, IngestCounts& counts) {
    const auto r = parse_smtp_client_message(line.message);
    if (!r) {
      counts.skipped += 1;
      return;
    }
    counts.parsed += 1;
    const std::size_t max = options.max_value_bytes;
    auto s = [max](std::string_view v) { return std::string(bounded(v, max)); };
    pending_remote.push_back(PendingRemote{
        line.time_us, s(r->server_name), s(r->server_addr), s(r->kind), s(r->state),
        s(r->status), s(r->queue_id), s(r->recipient), s(r->dsn), s(r->reason),
        r->server_port ? std::optional<std::int64_t>(*r->server_port) : std::nullopt, r->probe});
  }

  // Reads one file (one rotation generation) until its end, or in follow
  // mode until it is rotated away, rewritten, or `stop`. from_start: the
  // file was rewritten in place, so a position saved for its first line
  // is not one in it.
  Result<FileEnd> read_file(const std::string& path, const std::atomic<bool>& stop,
                            IngestCounts& total, bool from_start) {
    const bool stdin_stream = path == "-";
    auto opened = stdin_stream ? Result<std::unique_ptr<LogReader>>(LogReader::open_stream(
                                     STDIN_FILENO, options.max_line_bytes))
                               : LogReader::open(path, options.max_line_bytes);
    if (!opened) return opened.status();
    LogReader& reader = *opened.value();
    const std::string record_path = stdin_stream ? options.stream_name : path;
    auto fingerprint = reader.first_line();
    if (!fingerprint) return fingerprint.status().context(path);
    total.files += 1;
    if (fingerprint.value().empty()) {
      if (!options.follow || stdin_stream) total.no_complete_line = true;
      if (stdin_stream) return FileEnd::done;
      return wait_for_growth(path, reader, stop);
    }
    auto record = lookup(fingerprint.value());
    if (!record) return record.status();
    if (record.value().offset > 0 && !from_start) {
      auto sought = reader.seek(record.value().offset);
      if (!sought) return sought.status().context(path);
      if (sought.value()) {
        total.resumed_from = record.value().offset;
      } else if (auto again = reader.seek(0); !again) {  // shorter now: rewritten
        return again.status().context(path);
      }
    }
    YearTracker years = year_tracker(path, options);
    IngestCounts batch;
    const std::int64_t start = reader.offset();
    auto last_progress = std::chrono::steady_clock::now();
    auto flush = [&](std::int64_t offset) -> Status {
      Status committed = commit(fingerprint.value(), record_path, offset, batch);
      if (!committed) return committed;
      total.add(batch);
      total.bytes = offset - start;
      batch = IngestCounts{};
      clock_us = now_us();
      if (options.progress) options.progress(total.bytes, total.lines);
      return Status::ok();
    };
    std::string_view line;
    std::int64_t end = reader.offset();
    for (;;) {
      auto got = reader.next(line, end);
      if (!got) return got.status().context(path);
      if (got.value() != LogReader::Next::none) {
        if (got.value() == LogReader::Next::line) {
          take(line, years, batch);
        } else {
          batch.lines += 1;
          batch.malformed += 1;
          batch.too_long += 1;
        }
        if (batch.lines >= options.batch_lines) {
          if (Status s = flush(end); !s) return s;
          if (stop) return FileEnd::done;
        } else if (options.progress &&
                   std::chrono::steady_clock::now() - last_progress > std::chrono::milliseconds(500)) {
          options.progress(end - start, total.lines + batch.lines);
          last_progress = std::chrono::steady_clock::now();
        }
        continue;
      }
      if (Status s = flush(reader.offset()); !s) return s;
      if (reader.stream()) {
        if (!reader.at_end() && !stop) continue;  // silent for a moment: committed, read on
        // Closed: nothing more will come, so an unterminated last line is whole.
        if (std::int64_t after = 0; reader.finish(line, after)) {
          take(line, years, batch);
          if (Status s = flush(after); !s) return s;
        }
        if (total.lines == 0 && record.value().known) total.already_complete = true;
        return FileEnd::done;
      }
      if (!options.follow) {
        total.cut_short = reader.cut_short();
        std::int64_t unused = 0;
        // A cut .gz has no "rest to come": what follows its last newline is lost.
        total.incomplete_last_line = !total.cut_short && reader.finish(line, unused);
        if (total.lines == 0 && record.value().known) total.already_complete = true;
        return FileEnd::done;
      }
      if (stop) return FileEnd::done;
      // Looked at after the pause, right before reading on: a file truncated
      // and written again during it must not be read on from the old position.
      std::this_thread::sleep_for(options.poll_interval);
      switch (reader.identity(path)) {
        case LogReader::Identity::same: break;
        case LogReader::Identity::replaced: return FileEnd::replaced;
        case LogReader::Identity::rewritten: return FileEnd::rewritten;
      }
    }
  }

  Result<FileEnd> wait_for_growth(const std::string& path, const LogReader& reader,
                                  const std::atomic<bool>& stop) {
    while (options.follow && !stop) {
      struct stat info{};
      if (reader.identity(path) != LogReader::Identity::same ||
          (::stat(path.c_str(), &info) == 0 && info.st_size > 0)) {
        return FileEnd::replaced;  // read it again from the start
      }
      std::this_thread::sleep_for(options.poll_interval);
    }
    return FileEnd::done;
  }
};

Result<std::unique_ptr<Ingester>> Ingester::open(const std::string& database_path,
                                                 int busy_timeout_ms, IngestOptions options) {
  auto db = open_database(database_path, busy_timeout_ms);
  if (!db) return db.status();
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->db = std::move(db).value();
  // Bulk writes: a 64 MiB page cache and a checkpoint every ~40 MiB of WAL
  // instead of every 4 MiB (measured in bench/README.md).
  if (Status tuned = impl->db->exec("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000");
      !tuned) {
    return tuned.context("tune the ingest connection");
  }
  auto writer = EventWriter::create(*impl->db);
  if (!writer) return writer.status();
  impl->writer = std::move(writer).value();
  auto find = impl->db->prepare(
      "SELECT offset, coalesce(cursor, '') FROM ingest_files WHERE fingerprint = ?1");
  if (!find) return find.status();
  impl->find_file.emplace(std::move(find).value());
  auto save = impl->db->prepare(
      "INSERT INTO ingest_files (fingerprint, path, offset, lines, parsed, skipped, malformed,"
      " updated_us, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (fingerprint)"
      " DO UPDATE SET path = excluded.path, offset = excluded.offset,"
      " cursor = coalesce(excluded.cursor, cursor), lines = lines + excluded.lines,"
      " parsed = parsed + excluded.parsed, skipped = skipped + excluded.skipped,"
      " malformed = malformed + excluded.malformed, updated_us = excluded.updated_us");
  if (!save) return save.status();
  impl->save_file.emplace(std::move(save).value());
  auto remote = impl->db->prepare(
      "INSERT INTO remote_events (time_us, server_name, server_addr, server_port, kind, state,"
      " status, queue_id, recipient, dsn, probe, reason)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  if (!remote) return remote.status();
  impl->insert_remote.emplace(std::move(remote).value());
  return std::unique_ptr<Ingester>(new Ingester(std::move(impl)));
}

Ingester::Ingester(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ingester::~Ingester() = default;

Result<IngestCounts> Ingester::ingest(const std::string& path, const std::atomic<bool>& stop) {
  IngestCounts counts;
  bool from_start = false;
  for (;;) {
    auto ended = impl_->read_file(path, stop, counts, from_start);
    if (!ended) return ended.status();
    if (ended.value() == FileEnd::done || stop) return counts;
    from_start = ended.value() == FileEnd::rewritten;
  }
}

Result<IngestCounts> Ingester::ingest_journal(const JournalSelection& selection,
                                              const std::atomic<bool>& stop) {
  return impl_->read_journal(selection, stop);
}

void IngestCounts::add(const IngestCounts& batch) {
  lines += batch.lines;
  parsed += batch.parsed;
  skipped += batch.skipped;
  malformed += batch.malformed;
  too_long += batch.too_long;
  if (out_of_range == 0) first_out_of_range = batch.first_out_of_range;
  out_of_range += batch.out_of_range;
  if (bad_time == 0) first_bad_time = batch.first_bad_time;
  bad_time += batch.bad_time;
}

}  // namespace smtpscope::ingest
