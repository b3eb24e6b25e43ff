"""A TCP proxy on loopback that passes what the server sends at most `rate` bytes per second
per connection (what the client sends goes through as is): a slow link to a real store, for
the shared-cache tests. Runs its own asyncio loop in a thread; a context manager."""

import asyncio
import threading

PIECE = 16 << 10


class Throttle:
    def __init__(self, target: str, rate: int):
        """`target`: http://HOST:PORT of the server; `rate`: bytes per second per connection."""
        hostport = target.split("://", 1)[-1].rstrip("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.rate = rate
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None
        self.tasks = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def __enter__(self):
        self.thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        return self

    def __exit__(self, *exc):
        async def close():
            self.server.close()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _handle(self, client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_w.close()
            return
        pipes = [asyncio.ensure_future(self._pipe(client_r, server_w, None)),
                 asyncio.ensure_future(self._pipe(server_r, client_w, self.rate))]
        self.tasks.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self.tasks.difference_update(pipes)

    @staticmethod
    async def _pipe(reader, writer, rate):
        try:
            while data := await reader.read(PIECE):
                writer.write(data)
                await writer.drain()
                if rate:
                    await asyncio.sleep(len(data) / rate)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
