"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in tests/operability/api_fuzz.rs.

Plugin uploads are `application/wasm`: schemathesis generates a bytes or
string payload for them, sent as is. Random bytes are not a component, so
this fuzzes the upload's refusal of non-components, its size limit and its
error shape. Remote write and OTLP protobuf bodies are fuzzed the same way.
"""

import schemathesis


def as_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return repr(value).encode()


# Not one serializer calling the other: the decorator registers the
# function and does not return it, so the name would be None.
@schemathesis.serializer("application/wasm")
def wasm_bytes(ctx, value):
    return as_bytes(value)


@schemathesis.serializer("application/x-protobuf")
def protobuf_bytes(ctx, value):
    """Remote write and OTLP bodies: random bytes fuzz the decoders'
    refusals (snappy, protobuf) and their error shape."""
    return as_bytes(value)
