"""A slow network link for trying the app as a far-away user would: a TCP proxy that delays every byte.

    python benchmarks/slow_link.py --to 127.0.0.1:7860 --port 7870 --down 0.5          # then open :7870
    python benchmarks/slow_link.py --to 127.0.0.1:7860 --port 7870 --down 0.5 --up 0.5  # a 1 s round trip

Each chunk read from one side is written to the other `delay` seconds after it arrived, in order, without
holding back the chunks behind it: the link adds latency, not a bandwidth limit, like a distant mobile
connection. `SlowLink` runs the same proxy in a background thread for tests and benchmarks:

    with SlowLink("127.0.0.1", 7860, down=0.5) as link:
        page.goto(link.url)
"""

import argparse
import asyncio
import socket
import threading
import time

CHUNK = 65536  # bytes read at once


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk delay seconds after it arrived (in order), until end of stream."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        """Write the queued chunks when they are due; None ends the stream."""
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if data is None:
                break
            writer.write(data)
            await writer.drain()

    deliverer = asyncio.create_task(deliver())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((loop.time() + delay, None))
    try:
        await deliverer
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def relay(client_reader, client_writer, host: str, port: int, up: float, down: float) -> None:
    """One client connection: open the upstream one and pump both ways, delayed, until both ends close."""
    writers = [client_writer]
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
        writers.append(server_writer)
        await asyncio.gather(pump(client_reader, server_writer, up), pump(server_reader, client_writer, down))
    except OSError:
        pass
    except asyncio.CancelledError:
        # the link is stopping; ending normally keeps asyncio's stream callback from logging the cancellation
        pass
    finally:
        for writer in writers:
            writer.close()


class SlowLink:
    """The delaying proxy on 127.0.0.1 (a free port), served by a background thread; a context manager.

    up: seconds added to every byte from the client to the server; down: from the server to the client.
    """

    def __init__(self, host: str, port: int, down: float = 0.5, up: float = 0.0):
        self.host, self.port, self.down, self.up = host, port, down, up
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="slow-link")
        self.server = None
        self.listen_port = None

    @property
    def url(self) -> str:
        """The app's address through the link."""
        return f"http://127.0.0.1:{self.listen_port}/"

    def start(self) -> "SlowLink":
        """Start listening; returns self."""
        self.thread.start()

        async def serve():
            """The proxy's listening socket."""
            return await asyncio.start_server(
                lambda r, w: relay(r, w, self.host, self.port, self.up, self.down), "127.0.0.1", 0)

        self.server = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(timeout=10)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop listening, drop the open connections and end the thread."""
        async def shut():
            """Close the listener, cancel the relays and wait for them to end."""
            self.server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.server is not None:
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def __enter__(self) -> "SlowLink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def measure_round_trip(host: str, port: int) -> float:
    """Seconds to connect through host:port and get the first byte of an HTTP answer (a sanity check)."""
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.recv(1)
    return time.perf_counter() - start


def main(argv=None) -> None:
    """Run the proxy until interrupted."""
    p = argparse.ArgumentParser(prog="python benchmarks/slow_link.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--to", default="127.0.0.1:7860", help="the app's host:port")
    p.add_argument("--port", type=int, default=7870, help="port to listen on (127.0.0.1)")
    p.add_argument("--down", type=float, default=0.5, help="seconds added to every byte from the app")
    p.add_argument("--up", type=float, default=0.0, help="seconds added to every byte to the app")
    args = p.parse_args(argv)
    host, port = args.to.rsplit(":", 1)

    async def serve():
        """Listen until interrupted."""
        server = await asyncio.start_server(lambda r, w: relay(r, w, host, int(port), args.up, args.down),
                                            "127.0.0.1", args.port)
        print(f"http://127.0.0.1:{args.port}/ -> {args.to}, +{args.up} s up, +{args.down} s down")
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
