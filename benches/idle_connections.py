#!/usr/bin/env python3
"""Memory held by idle TLS connections: starts `augur serve` (BINARY, rules/demo.yaml, no
reachable Prometheus), makes N TLS handshakes that send nothing, closes them, and prints
augur's RSS (and its anonymous part) and open fds before, with the connections, and 5 s and
15 s after they closed.

Usage: ulimit -n 8192; python3 benches/idle_connections.py target/debug/augur 3000
"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

binary, n = sys.argv[1], int(sys.argv[2])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp()
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
augur = subprocess.Popen(
    [binary, "serve", "--bind-address=127.0.0.1", f"--secure-port={port}",
     f"--config={root}/rules/demo.yaml", "--prometheus-url=http://127.0.0.1:9",
     f"--cert-dir={work}/certs"],
    stdout=subprocess.DEVNULL, stderr=open(f"{work}/augur.log", "w"))


def footprint():
    status = {l.split(":")[0]: l.split()[1] for l in open(f"/proc/{augur.pid}/status") if l.startswith("Rss") or l.startswith("VmRSS")}
    return (f"RSS {status['VmRSS']} KiB (anon {status['RssAnon']}), "
            f"{len(os.listdir(f'/proc/{augur.pid}/fd'))} fds")


try:
    while not os.path.exists(f"{work}/certs/apiserver.crt"):
        time.sleep(0.1)
    time.sleep(1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    print("before:", footprint())
    conns = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
             for _ in range(n)]
    time.sleep(1)
    print(f"with {n} idle connections:", footprint())
    for c in conns:
        c.close()
    time.sleep(5)
    print("5 s after closing them:", footprint())
    time.sleep(10)
    print("15 s after closing them:", footprint())
finally:
    augur.kill()
