#!/usr/bin/env python3
"""Writes a Compose file of N services that both docker-compose 1.29 and berth accept.

`gen_compose.py N` (shape "full", the default): services form chains of ten (each depends on the
previous one) with ports, volumes, environment, labels and healthchecks, so loading exercises the
whole pipeline.

`gen_compose.py N SHAPE [IMAGE]` with SHAPE chain (each service depends on the previous one),
fanout (one base, all others depend on it) or independent: minimal services that run busybox
`sleep 3600` from IMAGE (default busybox:latest), for timing `up`/`down` rather than loading.
The sleep runs under a shell that exits on SIGTERM, so that `down` measures the engines rather
than the 10 s stop timeout a PID 1 ignoring SIGTERM would cost."""
import sys

SHAPES = ("full", "chain", "fanout", "independent")


def full(n):
    out = ["version: \"3.9\"", "services:"]
    for i in range(n):
        out += [
            f"  svc{i}:",
            f"    image: busybox:{i % 7}",
            f"    command: [\"sh\", \"-c\", \"sleep {i}\"]",
            "    environment:",
            f"      INDEX: \"{i}\"",
            "      MODE: ${MODE:-bench}",
            "    labels:",
            f"      com.example.index: \"{i}\"",
            "    ports:",
            f"      - \"{20000 + i}:80\"",
            "    volumes:",
            f"      - data{i % 10}:/data",
            "    healthcheck:",
            "      test: [\"CMD\", \"true\"]",
            "      interval: 10s",
        ]
        if i % 10:
            out += ["    depends_on:", f"      - svc{i - 1}"]
    out.append("volumes:")
    for v in range(10):
        out.append(f"  data{v}:")
    return out


def sleepers(n, shape, image):
    cmd = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]"
    out = ["version: \"3.9\"", "services:"]
    for i in range(n):
        out += [f"  svc{i}:", f"    image: {image}", f"    command: {cmd}"]
        if shape == "chain" and i > 0:
            out += ["    depends_on:", f"      - svc{i - 1}"]
        elif shape == "fanout" and i > 0:
            out += ["    depends_on:", "      - svc0"]
    return out


def main():
    n = int(sys.argv[1])
    shape = sys.argv[2] if len(sys.argv) > 2 else "full"
    if shape not in SHAPES:
        sys.exit(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    image = sys.argv[3] if len(sys.argv) > 3 else "busybox:latest"
    out = full(n) if shape == "full" else sleepers(n, shape, image)
    print("\n".join(out))


if __name__ == "__main__":
    main()
