"""Slow readers for edge-reads.test.ts: COUNT sockets with a 1 KB receive buffer, each sending one
request and never reading, held until nginx ends them or MAX_POLLS polls have passed.

    python3 slow-readers.py HOST PORT PATH COUNT SOURCE_ADDRESSES MAX_POLLS

SOURCE_ADDRESSES: comma-separated local addresses the sockets connect from, in turn (each is one
client address to nginx). SO_RCVBUF is set before connect, so the window the kernel advertises
stays that small (Node cannot set it). Never reading, a socket cannot tell how nginx ended it
without looking at the kernel's state (TCP_INFO): CLOSE after a reset (nginx's send_timeout with
reset_timedout_connection), CLOSE_WAIT after a FIN (a short answer, sent in full, then closed:
Connection: close). Prints {"holding": COUNT} once every request is sent, then one line:
{"reset": n, "closed": n, "open": n, "seconds": s}. Bounded: COUNT sockets, MAX_POLLS polls of
0.5 s.
"""

import json
import socket
import sys
import time

TCP_ESTABLISHED, TCP_CLOSE, TCP_CLOSE_WAIT = 1, 7, 8


def say(line):
    print(json.dumps(line), flush=True)


def state(sock):
    # The first byte of struct tcp_info is tcpi_state.
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def main():
    host, port, path, count, sources, max_polls = sys.argv[1:7]
    port, count, max_polls = int(port), int(count), int(max_polls)
    sources = sources.split(",")
    request = f"GET {path} HTTP/1.1\r\nHost: inflow\r\nConnection: close\r\n\r\n".encode()
    sockets = []
    started = time.monotonic()
    for i in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.bind((sources[i % len(sources)], 0))
        sock.connect((host, port))
        sock.sendall(request)
        sockets.append(sock)
    say({"holding": count})
    for _ in range(max_polls):
        if not any(state(sock) == TCP_ESTABLISHED for sock in sockets):
            break
        time.sleep(0.5)
    states = [state(sock) for sock in sockets]
    say({
        "reset": states.count(TCP_CLOSE),
        "closed": states.count(TCP_CLOSE_WAIT),
        "open": states.count(TCP_ESTABLISHED),
        "seconds": round(time.monotonic() - started, 2),
    })
    for sock in sockets:
        sock.close()


main()
