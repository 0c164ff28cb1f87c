"""New-connection traffic for bench/dataplane.ts: a UDP flood sender and a counting receiver.

  dataplane-traffic.py send DEST PORT SECONDS MAX_PACKETS FIRST_SOURCE SOURCES
      Sends UDP datagrams to DEST:PORT as fast as it can for SECONDS (or until
      MAX_PACKETS are sent), every one from a different (source address, source
      port) pair: source ports 1024-65535, then the next of SOURCES addresses
      counting up from FIRST_SOURCE. So every datagram starts a new conntrack
      entry on the node. A raw socket (IP_HDRINCL) writes the headers: no
      socket per port. Prints {"sent", "errors", "seconds"} as JSON.
  dataplane-traffic.py recv PORT
      Counts datagrams arriving on UDP PORT; prints "ready" once bound. On
      SIGTERM it drains what is queued, prints {"received"} as JSON and exits.

Standard library only (raw sockets need CAP_NET_RAW): run with /usr/bin/python3.
"""

import json
import os
import signal
import socket
import struct
import sys
import time

PAYLOAD = b"buoy-bench-new-connection"


def send(dest, port, seconds, max_packets, first_source, sources):
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_IP, socket.IP_HDRINCL, 1)
    udp_length = 8 + len(PAYLOAD)
    total_length = 20 + udp_length
    packet = bytearray(total_length)
    # IPv4 header: the kernel fills in the checksum and the ID (raw(7)).
    struct.pack_into(
        "!BBHHHBBH4s4s", packet, 0, 0x45, 0, total_length, 0, 0, 64, 17, 0,
        socket.inet_aton(first_source), socket.inet_aton(dest),
    )
    # UDP header, checksum 0 (none, allowed over IPv4).
    struct.pack_into("!HHHH", packet, 20, 0, port, udp_length, 0)
    packet[28:] = PAYLOAD
    base = struct.unpack("!I", socket.inet_aton(first_source))[0]
    pack_into, sendto, target = struct.pack_into, sock.sendto, (dest, 0)
    sent = errors = 0
    source_port, host = 1024, 0
    start = time.monotonic()
    deadline = start + seconds
    while sent + errors < max_packets and time.monotonic() < deadline:
        for _ in range(min(256, max_packets - sent - errors)):
            pack_into("!I", packet, 12, base + host)
            pack_into("!H", packet, 20, source_port)
            try:
                sendto(packet, target)
                sent += 1
            except OSError:
                errors += 1
            source_port += 1
            if source_port > 65535:
                source_port = 1024
                host += 1
                if host >= sources:
                    raise SystemExit("out of distinct (source, port) pairs")
    print(json.dumps({"sent": sent, "errors": errors, "seconds": time.monotonic() - start}))


class Stop(Exception):
    pass


def recv(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.bind(("0.0.0.0", port))

    def stop(*_):
        raise Stop()

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    buffer = bytearray(2048)
    receive = sock.recv_into
    count = 0
    try:
        while True:
            receive(buffer)
            count += 1
    except Stop:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock.setblocking(False)
    try:
        while True:
            receive(buffer)
            count += 1
    except BlockingIOError:
        pass
    print(json.dumps({"received": count}), flush=True)
    os._exit(0)


def main(argv):
    if len(argv) == 8 and argv[1] == "send":
        send(argv[2], int(argv[3]), float(argv[4]), int(argv[5]), argv[6], int(argv[7]))
    elif len(argv) == 3 and argv[1] == "recv":
        recv(int(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
