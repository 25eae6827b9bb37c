// `smtpscope probe HOST[:PORT]`: an active check of an SMTP server's
// PIPELINING (RFC 2920). After EHLO it sends MAIL FROM:<>, RCPT, RSET and
// QUIT in one TCP segment, as Postfix's address verification does, and
// expects four replies in order; a server (or middlebox) that answers only
// some of them is what makes verification probes fail with "lost connection
// while sending RCPT TO". Without PIPELINING advertised it probes one
// command at a time. With --data-sink it also checks the MAIL/RCPT/DATA
// group and the end-of-data dot pipelined with QUIT, sending a tiny test
// message to that address only. It never sends a body otherwise.
#pragma once

#include <string>

namespace smtpscope::cli {

struct ProbeOptions {
  std::string target;        // host[:port], an IPv6 address, or [address]:port
  std::string source;        // local address to bind, empty: any
  std::string helo = "smtpscope-probe.invalid";
  std::string recipient;     // RCPT for the envelope group (default postmaster@host, an address literal for an IP)
  std::string data_sink;     // opt-in: recipient of the DATA-group test message
  double timeout_s = 10;
  std::string format = "text";
};

// The RCPT of the envelope group when none is given: postmaster at the
// host, as an address literal when the host is an IP address (RFC 5321
// 4.1.3): postmaster@[192.0.2.1], postmaster@[IPv6:2001:db8::1].
std::string default_recipient(const std::string& host);

// Exit code: 0 conformant, 1 not conformant or unreachable, 2 usage.
int run_probe(const ProbeOptions& options);

}  // namespace smtpscope::cli
