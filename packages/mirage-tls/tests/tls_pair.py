"""In-memory client/server pairs of the engine."""

from __future__ import annotations

from tls_certs import NOW_TS

from mirage.tls import Event, TlsConfig, TlsConnection


class Pair:
    def __init__(
        self,
        client_config: TlsConfig,
        server_config: TlsConfig,
        server_name: str | None = "localhost",
    ) -> None:
        self.client = TlsConnection(client_config, server_name=server_name)
        self.server = TlsConnection(server_config, server_side=True)
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []

    def collect(self) -> None:
        while (e := self.client.next_event()) is not None:
            self.client_events.append(e)
        while (e := self.server.next_event()) is not None:
            self.server_events.append(e)

    def step(self) -> bool:
        """Deliver what each side has queued; False when nothing moved."""
        moved = False
        data = self.client.data_to_send()
        if data:
            moved = True
            self.server.receive_data(data, NOW_TS)
        data = self.server.data_to_send()
        if data:
            moved = True
            self.client.receive_data(data, NOW_TS)
        self.collect()
        return moved

    def handshake(self) -> Pair:
        self.client.start()
        while self.step():
            pass
        return self

    def client_data(self) -> bytes:
        from mirage.tls import DataReceived

        return b"".join(e.data for e in self.client_events if isinstance(e, DataReceived))

    def server_data(self) -> bytes:
        from mirage.tls import DataReceived

        return b"".join(e.data for e in self.server_events if isinstance(e, DataReceived))
