"""A raw SMTP client for scripted sessions: exact command order, pipelining
in one TCP segment, abrupt drops, and a chosen 127.x source address so each
scenario plays a distinct client."""
import socket
import ssl


class SmtpClient:
    def __init__(self, port, source="127.0.0.1", host="127.0.0.1", timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.greeting = self.reply()

    def _line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Reads one (possibly multi-line) reply: (code, text)."""
        lines = [self._line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self._line())
        return int(lines[-1][:3]), "\n".join(l[4:] for l in lines)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def command(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def pipeline(self, lines):
        """Sends every command in one segment, then reads one reply each."""
        self.send("".join(l + "\r\n" for l in lines))
        return [self.reply() for _ in lines]

    def message(self, body):
        code, _ = self.command("DATA")
        if code != 354:
            return code
        data = body.replace("\r\n", "\n").replace("\n", "\r\n")
        data = "\r\n".join("." + l if l.startswith(".") else l for l in data.split("\r\n"))
        self.send(data + "\r\n.\r\n")
        return self.reply()[0]

    def starttls(self):
        """STARTTLS, then TLS on the same socket (any certificate)."""
        code, _ = self.command("STARTTLS")
        if code == 220:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self.sock = context.wrap_socket(self.sock)
            self.buffer = b""
        return code

    def quit(self):
        code = self.command("QUIT")[0]
        self.sock.close()
        return code

    def drop(self):
        """Closes the TCP connection without QUIT."""
        self.sock.close()
