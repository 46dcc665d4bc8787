#!/usr/bin/env python3
"""The most an imrelp can take: one RELP session that sends N syslog frames
at once, with no window at all, and waits for all N answers. No real client
may do this (it would hold everything in flight); it is the receiver's floor
for tests/bench/export.sh. Usage: relp-floor.py HOST PORT N"""
import socket
import sys
import threading

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
offer = b"\nrelp_version=0\nrelp_software=relp-floor\ncommands=syslog"
s.sendall(b"1 open %d %s\n" % (len(offer), offer))
answer = b""
while not (answer.endswith(b"\n") and b"commands=syslog" in answer):
    more = s.recv(65536)
    if not more:
        sys.exit("relp-floor: the server closed during open")
    answer += more
msg = b"<13>1 2026-12-01T00:00:00Z h bench - - - " + b"x" * 60
data = b"".join(b"%d syslog %d %s\n" % (i + 2, len(msg), msg) for i in range(n))
answered = 0


def read_answers():
    global answered
    while answered < n:
        more = s.recv(1 << 20)
        if not more:
            break
        answered += more.count(b" rsp ")


reader = threading.Thread(target=read_answers)
reader.start()
s.sendall(data)
reader.join()
if answered < n:
    sys.exit("relp-floor: %d of %d answered" % (answered, n))
