"""A policy-protocol client for tests: sends requests, reads answers."""
import socket

BASE = {
    "request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
    "client_address": "192.0.2.7", "client_name": "unknown", "client_port": "40001",
    "reverse_client_name": "unknown", "server_address": "127.0.0.1", "server_port": "25",
    "helo_name": "ws7.corp.example", "sender": "clerk@corp.example",
    "recipient": "boss@test.example", "recipient_count": "0", "queue_id": "",
    "instance": "1f4.6b03a76b.d4dad.0", "size": "0", "etrn_domain": "", "stress": "",
    "sasl_method": "", "sasl_username": "", "sasl_sender": "", "ccert_subject": "",
    "ccert_issuer": "", "ccert_fingerprint": "", "ccert_pubkey_fingerprint": "",
    "encryption_protocol": "", "encryption_cipher": "", "encryption_keysize": "0",
    "policy_context": "",
}


def encode(**overrides):
    attributes = dict(BASE, **overrides)
    return "".join(f"{k}={v}\n" for k, v in attributes.items()) + "\n"


class PolicyClient:
    def __init__(self, address, timeout=10):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def answer(self):
        """The next action, or None when the server closed the connection."""
        while b"\n\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        reply, self.buffer = self.buffer.split(b"\n\n", 1)
        assert reply.startswith(b"action="), reply
        return reply[len(b"action="):].decode()

    def ask(self, **overrides):
        self.send(encode(**overrides))
        return self.answer()

    def closed_by_server(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()
