"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in tests/operability/api_fuzz.rs.

Plugin uploads are `application/wasm`: schemathesis generates a bytes or
string payload for them, sent as is. Random bytes are not a component, so
this fuzzes the upload's refusal of non-components, its size limit and its
error shape.
"""

import schemathesis


@schemathesis.serializer("application/wasm")
def wasm_bytes(ctx, value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return repr(value).encode()
