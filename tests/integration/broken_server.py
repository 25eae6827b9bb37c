"""A deliberately broken SMTP server for tests: offers PIPELINING, then
mishandles a pipelined command group the way some middleboxes do: either
answers only its last command (QUIT) or drops the connection without a
reply."""
import socket
import threading


def read_until(conn, buffer, marker):
    """Reads until `marker` is in what arrived (buffer included); None when
    the client closed first."""
    while marker not in buffer:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buffer += chunk
    return buffer


class BrokenServer:
    def __init__(self, mode="only-quit", host="127.0.0.1"):
        self.mode = mode
        self.listener = socket.socket()
        self.listener.bind((host, 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        with conn:
            try:
                conn.sendall(b"220 broken.example ESMTP\r\n")
                if read_until(conn, b"", b"\r\n") is None:  # EHLO
                    return
                conn.sendall(b"250-broken.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                group = read_until(conn, b"", b"\r\n")  # the first line of the group
                if group is None or self.mode == "drop":
                    return  # close without a reply
                if read_until(conn, group, b"QUIT\r\n") is None:
                    return
                conn.sendall(b"221 2.0.0 Bye\r\n")
            except OSError:
                return

    def close(self):
        self.listener.close()
