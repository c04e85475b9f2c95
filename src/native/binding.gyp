# node-gyp build of the timestamping addon (see docs/timestamps.md). Linux only: the addon is
# SO_TIMESTAMPING, MSG_ERRQUEUE and ICMP ping sockets. src/native/build.mjs runs this at
# `npm ci` and never fails the install.
{
  "targets": [
    {
      "target_name": "podmesh_timestamping",
      "sources": ["timestamping.c", "receive.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
