#!/usr/bin/env python3
"""Writes a Compose file of N services that both docker-compose 1.29 and berth accept.

Services form chains of ten (each depends on the previous one) with ports, volumes,
environment, labels and healthchecks, so loading exercises the whole pipeline."""
import sys

def main():
    n = int(sys.argv[1])
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
    print("\n".join(out))

if __name__ == "__main__":
    main()
