#!/usr/bin/env python3
"""The functions augur runs, for the linker to lay out together (dist/augur.order, which
.ci/dist passes to lld as --symbol-ordering-file).

The kernel maps code in 64 KiB blocks around each page fault, and start-up, the relist and
the request paths run about 3 MB of code spread over the whole 13 MB text: without an order
nearly all of the text becomes resident. Listed to the linker, that code shares as few
blocks as it can.

Reads callgrind profiles of BINARY (a dist build: symbol names depend on the profile) and
writes the names of BINARY's functions that ran in any of them (mangled, sorted, one a line)
to OUT. The profiles come from the serve bench, standalone and in cluster mode:

    bash .ci/dist
    cargo bench --bench serve -- --binary target/dist/augur --seconds 1 --burst 20 --callgrind /tmp/standalone.cg
    cargo bench --bench serve -- --binary target/dist/augur --seconds 1 --burst 20 --cluster --callgrind /tmp/cluster.cg
    python3 benches/symbol_order.py target/dist/augur dist/augur.order /tmp/standalone.cg /tmp/cluster.cg
"""
import os
import re
import sys

binary, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
target = os.path.realpath(binary)
functions = set()
for profile in profiles:
    names, objects, ran = {}, {}, set()
    current_object = None
    for line in open(profile, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(c?)ob=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(3):
                objects[m.group(2)] = m.group(3)
            if not m.group(1):
                current_object = objects.get(m.group(2))
            continue
        m = re.match(r"^(c?)fn=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if not m.group(1) and current_object == target:
                ran.add(m.group(2))
    functions |= {names[i] for i in ran if not names[i].startswith("0x")}
# The entry points run before anything callgrind attributes to a function.
functions |= {"_start", "_init"}
with open(out, "w") as f:
    f.writelines(name + "\n" for name in sorted(functions))
print(f"{len(functions)} functions of {binary} ran; written to {out}")
