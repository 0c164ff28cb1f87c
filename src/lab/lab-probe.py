"""The lab's traffic probe: a responder for pod namespaces and one-shot senders.

  lab-probe.py serve NAME READY_FILE SEEN_LOG
      Answers on TCP and UDP port 7000 and on raw IP protocols 253 and 47
      (GRE), IPv4 and IPv6, and watches ICMP echo requests. Each answer is a
      JSON object {"pod", "peer", "local", "request"}: the responder's name, the
      address the request came from and the one it was sent to, as this
      namespace saw them. ICMP echo is answered by the kernel; the responder
      appends {"nonce", "pod", "peer", "local"} for each echo request carrying
      a probe nonce to SEEN_LOG (shared by the lab's responders). Touches
      READY_FILE once every socket is bound.
  lab-probe.py send icmp|tcp|udp|raw253|raw47 DEST TIMEOUT_S SEEN_LOG
      Sends one request and prints one JSON line: {"ok": true, "replyFrom",
      "answer", "rttMs"} (answer as above; for ICMP read back from SEEN_LOG),
      or {"ok": false, "error"} and exits 1 when no answer came within
      TIMEOUT_S.
  lab-probe.py ping DEST DURATION_S INTERVAL_MS
      Sends ICMP echo requests on a fixed schedule (every INTERVAL_MS from the
      start, not INTERVAL_MS after the last one, so a slow timer does not
      lower the rate) for DURATION_S, waits one more second for answers, and
      prints {"intervalMs", "sentAtMs": [...], "replies": [[seq, atMs], ...]}.
  lab-probe.py udpping DEST DURATION_S INTERVAL_MS
      As ping, with UDP requests to port 7000 carrying their sequence number;
      each answer names the pod that sent it, so a probe answered by two pods
      shows: prints {"intervalMs", "sentAtMs", "replies": [[seq, atMs, pod],
      ...]} with every answer, duplicates included.
  lab-probe.py http URL TIMEOUT_S
      GET URL; prints the status code and exits 0 on 200, 1 otherwise.

GRE requests and answers carry a GRE version 0 header (the kernel's NAT drops
GRE of an unknown version); the other raw payloads are bare.

Standard library only (raw sockets need CAP_NET_RAW): run with /usr/bin/python3.
"""

import ipaddress
import json
import os
import select
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

PORT = 7000
RAW_PROTOCOLS = (253, 47)
GRE = 47
# GRE version 0, no options, protocol type 0x88b5 (local experimental ethertype).
GRE_HEADER = bytes([0x00, 0x00, 0x88, 0xB5])
NONCE_PREFIX = b"buoy-lab-probe "
ICMP_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
ICMP_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}


def family_of(address):
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def strip_ipv4_header(packet):
    return packet[(packet[0] & 0x0F) * 4 :]


# ---- serve ----------------------------------------------------------------


class Responder:
    def __init__(self, name, seen_log):
        self.name = name
        self.seen_log = seen_log
        self.lock = threading.Lock()

    def answer(self, peer, local, request):
        text = request.decode(errors="replace").strip()
        return json.dumps({"pod": self.name, "peer": peer, "local": local, "request": text}).encode()

    def serve_tcp(self, sock):
        while True:
            conn, peer = sock.accept()
            with conn:
                conn.settimeout(2.0)
                try:
                    request = conn.recv(1024)
                    conn.sendall(self.answer(peer[0], conn.getsockname()[0], request) + b"\n")
                except OSError:
                    pass

    def serve_udp(self, sock):
        while True:
            request, peer = sock.recvfrom(1024)
            sock.sendto(self.answer(peer[0], "-", request), peer)

    @staticmethod
    def is_answer(protocol, payload):
        """An answer (ours looped back, or another responder's to a probe sent from here)."""
        body = payload[len(GRE_HEADER) :] if protocol == GRE else payload
        return body.startswith(b"{")

    def raw_answer(self, protocol, peer, local, request):
        if protocol != GRE:
            return self.answer(peer, local, request)
        return GRE_HEADER + self.answer(peer, local, request[len(GRE_HEADER) :])

    def serve_raw4(self, sock, protocol):
        while True:
            packet, peer = sock.recvfrom(65535)
            local = socket.inet_ntop(socket.AF_INET, packet[16:20])
            payload = strip_ipv4_header(packet)
            if self.is_answer(protocol, payload):
                continue
            sock.sendto(self.raw_answer(protocol, peer[0], local, payload), (peer[0], 0))

    def serve_raw6(self, sock, protocol):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        while True:
            payload, ancillary, _flags, peer = sock.recvmsg(65535, 1024)
            if self.is_answer(protocol, payload):
                continue
            sock.sendto(
                self.raw_answer(protocol, peer[0], local_of(ancillary), payload), (peer[0], 0)
            )

    def watch_icmp(self, sock, family):
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        while True:
            if family == socket.AF_INET:
                packet, peer = sock.recvfrom(65535)
                local = socket.inet_ntop(socket.AF_INET, packet[16:20])
                message = strip_ipv4_header(packet)
            else:
                message, ancillary, _flags, peer = sock.recvmsg(65535, 1024)
                local = local_of(ancillary)
            if len(message) < 8 or message[0] != ICMP_ECHO_REQUEST[family]:
                continue
            payload = message[8:]
            if not payload.startswith(NONCE_PREFIX):
                continue
            nonce = payload[len(NONCE_PREFIX) :].decode(errors="replace").strip()
            line = json.dumps({"nonce": nonce, "pod": self.name, "peer": peer[0], "local": local})
            with self.lock:
                fd = os.open(self.seen_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, (line + "\n").encode())
                finally:
                    os.close(fd)


def local_of(ancillary):
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            return socket.inet_ntop(socket.AF_INET6, data[:16])
    return "-"


def serve(name, ready_file, seen_log):
    responder = Responder(name, seen_log)
    workers = []
    for family, any_address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        tcp = socket.socket(family, socket.SOCK_STREAM)
        udp = socket.socket(family, socket.SOCK_DGRAM)
        for sock in (tcp, udp):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((any_address, PORT))
        tcp.listen(16)
        workers += [(responder.serve_tcp, (tcp,)), (responder.serve_udp, (udp,))]
        for protocol in RAW_PROTOCOLS:
            raw = socket.socket(family, socket.SOCK_RAW, protocol)
            serve_raw = responder.serve_raw4 if family == socket.AF_INET else responder.serve_raw6
            workers.append((serve_raw, (raw, protocol)))
        icmp_protocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
        icmp = socket.socket(family, socket.SOCK_RAW, icmp_protocol)
        workers.append((responder.watch_icmp, (icmp, family)))
    for target, args in workers:
        threading.Thread(target=target, args=args, daemon=True).start()
    open(ready_file, "w").close()
    threading.Event().wait()


# ---- send -----------------------------------------------------------------


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def send_icmp(dest, timeout_s, seen_log, deadline):
    family = family_of(dest)
    protocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = socket.socket(family, socket.SOCK_RAW, protocol)
    ident = os.getpid() & 0xFFFF
    nonce = os.urandom(8).hex()
    payload = NONCE_PREFIX + nonce.encode()
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST[family], 0, 0, ident, 1)
    if family == socket.AF_INET:
        header = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, 1)
    # (ICMPv6: the kernel fills in the checksum of raw ICMPv6 sockets.)
    sock.sendto(header + payload, (dest, 0))
    while True:
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([sock], [], [], max(remaining, 0))
        if not readable:
            raise TimeoutError(f"no echo reply within {timeout_s} s")
        packet, peer = sock.recvfrom(65535)
        message = strip_ipv4_header(packet) if family == socket.AF_INET else packet
        if len(message) < 8 or message[0] != ICMP_ECHO_REPLY[family]:
            continue
        if struct.unpack("!H", message[4:6])[0] != ident or message[8:] != payload:
            continue
        reply_from = peer[0]
        replied = time.monotonic()
        break
    # The responder saw the request as the kernel answered it; a pod without a
    # responder notes nothing, so do not wait long.
    answer = None
    noted_by = time.monotonic() + 0.3
    while answer is None and time.monotonic() < noted_by:
        answer = find_seen(seen_log, nonce)
        if answer is None:
            time.sleep(0.02)
    return reply_from, answer, replied


def find_seen(seen_log, nonce):
    try:
        with open(seen_log) as lines:
            for line in lines:
                try:
                    seen = json.loads(line)
                except ValueError:
                    continue
                if seen.get("nonce") == nonce:
                    return {"pod": seen["pod"], "peer": seen["peer"], "local": seen["local"]}
    except FileNotFoundError:
        pass
    return None


def send(mode, dest, timeout_s, seen_log):
    started = time.monotonic()
    deadline = started + timeout_s
    family = family_of(dest)
    request = f"hello-{mode}".encode()
    replied = None
    if mode == "icmp":
        source, answer, replied = send_icmp(dest, timeout_s, seen_log, deadline)
        reply = None
    elif mode == "tcp":
        with socket.create_connection((dest, PORT), timeout=timeout_s) as sock:
            sock.sendall(request)
            reply = sock.recv(1024)
            source = sock.getpeername()[0]
    elif mode == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.settimeout(timeout_s)
        sock.sendto(request, (dest, PORT))
        reply, peer = sock.recvfrom(1024)
        source = peer[0]
    else:
        protocol = int(mode.removeprefix("raw"))
        header = GRE_HEADER if protocol == GRE else b""
        sock = socket.socket(family, socket.SOCK_RAW, protocol)
        sock.sendto(header + request, (dest, 0))
        # The socket sees every packet of the protocol: wait for the first answer.
        while True:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([sock], [], [], max(remaining, 0))
            if not readable:
                raise TimeoutError(f"no answer within {timeout_s} s")
            packet, peer = sock.recvfrom(65535)
            if family == socket.AF_INET:
                packet = strip_ipv4_header(packet)
            packet = packet[len(header) :]
            if not packet.startswith(b"{"):
                continue  # a request (ours, looped back when the destination is local)
            reply, source = packet, peer[0]
            break
    rtt_ms = round(((replied or time.monotonic()) - started) * 1000, 1)
    if reply is not None:
        try:
            answer = json.loads(reply.decode(errors="replace"))
        except ValueError:
            answer = {"raw": reply.decode(errors="replace").strip()}
    return {"ok": True, "replyFrom": source, "answer": answer, "rttMs": rtt_ms}


def ping(dest, duration_s, interval_ms):
    family = family_of(dest)
    protocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = socket.socket(family, socket.SOCK_RAW, protocol)
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    payload = b"buoy-lab-ping"
    interval = interval_ms / 1000
    start = time.monotonic()
    end = start + duration_s
    sent_at = []
    replies = {}
    next_send = start
    while True:
        now = time.monotonic()
        if next_send <= now and next_send < end:
            seq = (len(sent_at) + 1) & 0xFFFF
            header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST[family], 0, 0, ident, seq)
            if family == socket.AF_INET:
                header = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq)
            try:
                sock.sendto(header + payload, (dest, 0))
            except OSError:
                pass  # no route, for now: counts as lost
            sent_at.append(round((now - start) * 1000, 2))
            next_send += interval
            continue
        if now >= end + 1.0:
            break
        wake = next_send if next_send < end else end + 1.0
        readable, _, _ = select.select([sock], [], [], max(wake - now, 0))
        if not readable:
            continue
        while True:
            try:
                packet = sock.recv(65535)
            except BlockingIOError:
                break
            message = strip_ipv4_header(packet) if family == socket.AF_INET else packet
            if len(message) < 8 or message[0] != ICMP_ECHO_REPLY[family]:
                continue
            reply_ident, reply_seq = struct.unpack("!HH", message[4:8])
            if reply_ident == ident and reply_seq not in replies:
                replies[reply_seq] = round((time.monotonic() - start) * 1000, 2)
    print(
        json.dumps(
            {
                "intervalMs": interval_ms,
                "sentAtMs": sent_at,
                "replies": sorted([seq, at] for seq, at in replies.items()),
            }
        )
    )


def udpping(dest, duration_s, interval_ms):
    family = family_of(dest)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect((dest, PORT))
    interval = interval_ms / 1000
    start = time.monotonic()
    end = start + duration_s
    sent_at = []
    replies = []
    next_send = start
    while True:
        now = time.monotonic()
        if next_send <= now and next_send < end:
            seq = len(sent_at) + 1
            try:
                sock.send(f"udpping {seq}".encode())
            except OSError:
                pass  # no route, or an ICMP error from the last send: counts as lost
            sent_at.append(round((now - start) * 1000, 2))
            next_send += interval
            continue
        if now >= end + 1.0:
            break
        wake = next_send if next_send < end else end + 1.0
        readable, _, _ = select.select([sock], [], [], max(wake - now, 0))
        if not readable:
            continue
        while True:
            try:
                reply = sock.recv(2048)
            except BlockingIOError:
                break
            except OSError:
                break  # an ICMP error (port unreachable) queued on the socket
            try:
                answer = json.loads(reply.decode(errors="replace"))
                seq = int(str(answer.get("request", "")).split(" ")[1])
            except (ValueError, IndexError, AttributeError):
                continue
            replies.append([seq, round((time.monotonic() - start) * 1000, 2), answer.get("pod")])
    print(json.dumps({"intervalMs": interval_ms, "sentAtMs": sent_at, "replies": replies}))


def http(url, timeout_s):
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"no answer: {error}")
        return 1
    print(status)
    return 0 if status == 200 else 1


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "serve":
        serve(args[1], args[2], args[3])
    elif len(args) == 5 and args[0] == "send":
        try:
            print(json.dumps(send(args[1], args[2], float(args[3]), args[4])))
        except (OSError, ValueError) as error:
            print(json.dumps({"ok": False, "error": str(error) or type(error).__name__}))
            sys.exit(1)
    elif len(args) == 4 and args[0] == "ping":
        ping(args[1], float(args[2]), float(args[3]))
    elif len(args) == 4 and args[0] == "udpping":
        udpping(args[1], float(args[2]), float(args[3]))
    elif len(args) == 3 and args[0] == "http":
        sys.exit(http(args[1], float(args[2])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
