#!/usr/bin/env python3
"""Open N idle SMTP sessions against a server and report its resident memory per session.

Each session connects, reads the greeting, says EHLO and reads the reply, then stays open and
silent. The server's RSS (VmRSS of the given pid) is read before the first connection and once
every session is established; the difference divided by N is the memory an idle session costs.

usage: idle_sessions.py HOST PORT PID [N]
"""
import asyncio
import resource
import sys


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def read_reply(reader: asyncio.StreamReader) -> bytes:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def open_session(host: str, port: int, sem: asyncio.Semaphore):
    async with sem:  # a bounded number of handshakes in flight, not a bounded number of sessions
        reader, writer = await asyncio.open_connection(host, port)
        greeting = await read_reply(reader)
        if not greeting.startswith(b"220"):
            raise ConnectionError(f"greeting: {greeting!r}")
        writer.write(b"EHLO idle.bench.test\r\n")
        await writer.drain()
        ehlo = await read_reply(reader)
        if not ehlo.startswith(b"250"):
            raise ConnectionError(f"EHLO: {ehlo!r}")
        return reader, writer


async def main() -> int:
    host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, count + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    before = rss_kib(pid)
    sem = asyncio.Semaphore(200)
    sessions = await asyncio.gather(*(open_session(host, port, sem) for _ in range(count)))
    await asyncio.sleep(1.0)  # let the server settle (buffers shrink, allocator returns pages)
    after = rss_kib(pid)
    per_session = (after - before) * 1024 / count
    print(f"idle sessions: {count}")
    print(f"server RSS before: {before / 1024:.1f} MiB, with {count} idle sessions: {after / 1024:.1f} MiB")
    print(f"memory per idle session: {per_session / 1024:.1f} KiB")
    for _, writer in sessions:
        writer.write(b"QUIT\r\n")
        writer.close()
    await asyncio.gather(*(w.wait_closed() for _, w in sessions), return_exceptions=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
