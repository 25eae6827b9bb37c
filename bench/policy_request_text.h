// The policy request of the benchmarks (bench/policy_load, store_bench): a
// ~700-byte RCPT request as Postfix 3.7 sends it, for connection
// `connection`, the n-th on it. Client port and instance change every 5
// requests, as if each SMTP session had one mail transaction with 5
// recipients (smtpd sends the same instance for every request of a
// transaction).
#pragma once

#include <string>

inline std::string policy_request_text(int connection, long n) {
  const int port = 10000 + static_cast<int>((n / 5) % 50000);
  std::string r =
      "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
      "client_address=192.0.2." + std::to_string(connection % 250 + 1) +
      "\nclient_name=mail.client" + std::to_string(connection) + ".example.net\nclient_port=" +
      std::to_string(port) +
      "\nreverse_client_name=mail.client.example.net\nserver_address=127.0.0.1\n"
      "server_port=25\nhelo_name=mail.client.example.net\n"
      "sender=newsletter-bounces+alice=example.org@lists.example.net\n"
      "recipient=bob.smith@research.example\nrecipient_count=0\nqueue_id=\n"
      "instance=64a.6b03a76b.d4dad." + std::to_string((n / 5) % 16) +
      "\nsize=48213\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\n"
      "ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"
      "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"
      "encryption_keysize=256\npolicy_context=";
  while (r.size() < 698) r += "x";  // pad the last value: ~700 bytes in all
  return r + "\n\n";
}
