"""Type stub for the optional C extension built from schemas/_avro_fast.c."""

from typing import Any

PROGRAM_FORMAT: int

class Encoder:
    accelerated: bool
    nodes: int
    def __init__(self, program: tuple[tuple[Any, ...], ...], root: int) -> None: ...
    def encode(self, record: Any, /) -> bytes: ...
    def encode_framed(self, prefix: bytes, record: Any, /) -> bytes: ...

class Decoder:
    accelerated: bool
    nodes: int
    def __init__(
        self,
        program: tuple[tuple[Any, ...], ...],
        root: int,
        logical: tuple[Any, ...],
        trailing_error: type[ValueError],
    ) -> None: ...
    def decode(self, body: bytes | bytearray | memoryview, /) -> Any: ...

def new_event_id() -> str: ...
