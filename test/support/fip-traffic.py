"""Traffic for the floating-IP tests: a responder for a pod and a one-shot sender.

  fip-traffic.py serve READY_FILE
      Answers on TCP and UDP port 7000 and on raw IP protocols 253 and 47 (GRE),
      IPv4 and IPv6. Each answer is "<peer> <local> <request>": the address the
      request came from and the one it was sent to, as this namespace saw them.
      Touches READY_FILE once every socket is bound.
  fip-traffic.py send tcp|udp|raw253|raw47 DEST
      Sends one request, prints "<source of the answer> <answer>" and exits 0,
      or exits 1 after two seconds without one.

GRE requests and answers carry a GRE version 0 header (the kernel's NAT drops
GRE of an unknown version); the rest of the raw payloads is bare text.

Standard library only (raw sockets need CAP_NET_RAW): run with /usr/bin/python3.
"""

import ipaddress
import select
import socket
import sys
import threading

PORT = 7000
RAW_PROTOCOLS = (253, 47)
TIMEOUT_S = 2.0
GRE = 47
# GRE version 0, no options, protocol type 0x88b5 (local experimental ethertype).
GRE_HEADER = bytes([0x00, 0x00, 0x88, 0xB5])


def family_of(address):
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def answer(peer, local, request):
    return f"{peer} {local} {request.decode(errors='replace').strip()}".encode()


def serve_tcp(sock):
    while True:
        conn, peer = sock.accept()
        with conn:
            conn.settimeout(TIMEOUT_S)
            try:
                request = conn.recv(1024)
                conn.sendall(answer(peer[0], conn.getsockname()[0], request) + b"\n")
            except OSError:
                pass


def serve_udp(sock):
    while True:
        request, peer = sock.recvfrom(1024)
        sock.sendto(answer(peer[0], "-", request), peer)


def raw_answer(protocol, peer, local, request):
    if protocol != GRE:
        return answer(peer, local, request)
    return GRE_HEADER + answer(peer, local, request[len(GRE_HEADER) :])


def serve_raw4(sock, protocol):
    while True:
        packet, peer = sock.recvfrom(65535)
        header = (packet[0] & 0x0F) * 4
        local = socket.inet_ntop(socket.AF_INET, packet[16:20])
        sock.sendto(raw_answer(protocol, peer[0], local, packet[header:]), (peer[0], 0))


def serve_raw6(sock, protocol):
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    while True:
        request, ancillary, _flags, peer = sock.recvmsg(65535, 1024)
        local = "-"
        for level, kind, data in ancillary:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                local = socket.inet_ntop(socket.AF_INET6, data[:16])
        sock.sendto(raw_answer(protocol, peer[0], local, request), (peer[0], 0))


def serve(ready_file):
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
        workers += [(serve_tcp, (tcp,)), (serve_udp, (udp,))]
        for protocol in RAW_PROTOCOLS:
            raw = socket.socket(family, socket.SOCK_RAW, protocol)
            serve_raw = serve_raw4 if family == socket.AF_INET else serve_raw6
            workers.append((serve_raw, (raw, protocol)))
    for target, args in workers:
        threading.Thread(target=target, args=args, daemon=True).start()
    open(ready_file, "w").close()
    threading.Event().wait()


def send(mode, dest):
    family = family_of(dest)
    request = f"hello-{mode}".encode()
    if mode == "tcp":
        with socket.create_connection((dest, PORT), timeout=TIMEOUT_S) as sock:
            sock.sendall(request)
            reply = sock.recv(1024)
            source = sock.getpeername()[0]
    elif mode == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.settimeout(TIMEOUT_S)
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
            readable, _, _ = select.select([sock], [], [], TIMEOUT_S)
            if not readable:
                raise TimeoutError("no answer")
            packet, peer = sock.recvfrom(65535)
            if family == socket.AF_INET:
                packet = packet[(packet[0] & 0x0F) * 4 :]
            packet = packet[len(header) :]
            if packet.startswith(request):
                continue  # our own request, looped back when the destination is local
            reply, source = packet, peer[0]
            break
    print(source, reply.decode(errors="replace").strip())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "send":
        try:
            send(sys.argv[2], sys.argv[3])
        except OSError as error:
            print(f"no answer: {error}", file=sys.stderr)
            sys.exit(1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
