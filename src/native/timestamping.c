// podmesh's timestamping addon: IPv4 datagram sockets (UDP, unprivileged ICMP "ping" sockets,
// raw ICMP) whose packets carry the kernel's software timestamps, so an RTT measures the
// network and not the time the process took to notice a packet. Node's dgram cannot do this:
// it never calls recvmsg() with ancillary data and never reads the socket error queue.
//
// What it does (docs/timestamps.md has the why and the fallbacks):
//   - SO_TIMESTAMPING with SOF_TIMESTAMPING_SOFTWARE | RX_SOFTWARE | TX_SOFTWARE | OPT_ID |
//     OPT_TSONLY: every received datagram comes with the time the kernel took it off the
//     device; every sent one gets a time from the driver's transmit path, delivered later on
//     the socket error queue (MSG_ERRQUEUE) and matched to its send by a per-send id. If the
//     kernel refuses SO_TIMESTAMPING, SO_TIMESTAMPNS still gives receive times.
//   - All timestamps are CLOCK_REALTIME nanoseconds (the clock the kernel stamps with);
//     realtimeNs() reads the same clock, so user-space readings compare with kernel ones.
//   - The socket is polled with a uv_poll_t on the event loop of the thread that opened it
//     (napi_get_uv_event_loop), so it works on worker threads as well as the main thread.
//   - Transmit timestamps are kept in a small ring inside the socket and looked up with
//     txTime(id): no JavaScript runs for them.
//   - What a received datagram or error-queue entry means, and the loops that read them, are in
//     receive.c, free of sockets and JavaScript so fuzz/receive-fuzz.c can fuzz them; this file
//     plugs in recvmsg() and the Node-API calls.
//
// It also makes TCP connect probes (TcpConnect, below): a handshake through net.Socket costs
// ~400 µs of CPU (TCPWrap, streams, several event-loop turns); done here it is a few syscalls and
// one callback, and TCP_INFO gives the kernel's own SYN to SYN-ACK time.
//
// JavaScript API (typed in timestamping.ts):
//   realtimeNs() -> bigint
//   new Socket(kind, bindAddress, port, stamps, onEvent)     kind 0 udp, 1 icmp ping, 2 raw icmp;
//                                                            stamps 0 none, 1 receive, 2 both
//     .send(buffer, address, port) -> id (number)            throws an Error with .code
//     .txTime(id) -> bigint | undefined
//     .setOption(level, name, value)                         int setsockopt, throws on error
//     .close()
//     .port, .address, .rxKernel, .txKernel                  read-only
//   onEvent(0, buffer, address, port, rxNs | undefined, ttl)   a datagram (ttl -1: unknown)
//   onEvent(1, buffer, destination, offender, type, code, info) an ICMP error for a sent packet
//   onEvent(2, errnoName, message)                            the poll itself failed
//   new TcpConnect(address, port, bindAddress | "", onDone)  one non-blocking IPv4 connect
//     .cancel()                                              stop and close; no onDone after it
//   onDone(errnoName | null, elapsedNs, tcpiRttUs | undefined, synRetransmits)

#include <node_api.h>
#include <uv.h>

#include "receive.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Per-send timestamp ids (Linux 6.13+). Defined here when the build machine's headers are
// older; only for architectures whose socket options come from asm-generic, where it is 81.
// A kernel that doesn't know it rejects the send with EINVAL and we fall back to the
// socket's own counter (see do_send).
#if !defined(SCM_TS_OPT_ID) && (defined(__x86_64__) || defined(__aarch64__))
#define SCM_TS_OPT_ID 81
#endif

#define KIND_UDP 0
#define KIND_ICMP_DGRAM 1
#define KIND_ICMP_RAW 2

#define EV_MESSAGE 0
#define EV_ICMP_ERROR 1
#define EV_POLL_ERROR 2

typedef struct {
  napi_env env;
  int fd;
  int kind;
  int rx_kernel;
  int tx_kernel;
  int use_cmsg_id;
  int cmsg_id_works;
  uint32_t next_id;
  int polling;
  int closing;
  int handle_closed;
  int finalized;
  uv_poll_t poll;
  napi_ref self;
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  uint16_t port;
  char address[INET_ADDRSTRLEN];
  rx_state rx;  // transmit-time ring and receive buffers (receive.h)
} sock_t;

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ts_ns(const struct timespec* ts) {
  return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

// Throws an Error whose .code is the errno name (EACCES, EHOSTUNREACH...), like Node's own.
static napi_value throw_errno(napi_env env, int err, const char* syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, uv_err_name(-err), strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, "EADDON", "napi call failed: " #call);       \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static void maybe_free(sock_t* s) {
  if (s->handle_closed && s->finalized) free(s);
}

static void on_handle_closed(uv_handle_t* h) {
  sock_t* s = (sock_t*)h->data;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->handle_closed = 1;
  if (s->cleanup != NULL) {
    napi_remove_async_cleanup_hook(s->cleanup);
    s->cleanup = NULL;
  }
  maybe_free(s);
}

// Stops polling and closes the fd once libuv has let go of it. Safe to call twice.
static void shut(sock_t* s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->polling) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t*)&s->poll, on_handle_closed);
  } else {
    on_handle_closed((uv_handle_t*)&s->poll);
  }
}

// The thread (main or worker) is going away with the socket still open.
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  sock_t* s = (sock_t*)arg;
  (void)handle;
  shut(s);
}

static void on_finalize(napi_env env, void* data, void* hint) {
  sock_t* s = (sock_t*)data;
  (void)env;
  (void)hint;
  s->finalized = 1;
  maybe_free(s);
}

// Calls onEvent(argv...) through napi_make_callback, so promise continuations queued by the
// callback run before control returns to libuv, as they do after Node's own I/O callbacks.
static void emit(sock_t* s, size_t argc, napi_value* argv) {
  napi_env env = s->env;
  napi_value cb, recv, result;
  if (s->closing) return;
  if (napi_get_reference_value(env, s->callback, &cb) != napi_ok) return;
  bool pending = false;
  // The receiver must be an object (napi_make_callback converts it), so pass the global.
  napi_get_global(env, &recv);
  napi_make_callback(env, s->async, recv, cb, argc, argv, &result);
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

static napi_value ipv4_string(napi_env env, const struct in_addr* a) {
  char text[INET_ADDRSTRLEN];
  napi_value v;
  inet_ntop(AF_INET, a, text, sizeof text);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value int_value(napi_env env, int64_t n) {
  napi_value v;
  napi_create_int64(env, n, &v);
  return v;
}

// The receive path's hooks into the socket and JavaScript (receive.h, rx_io).
static ssize_t sock_recv(void* ctx, struct msghdr* m, int flags) {
  return recvmsg(((sock_t*)ctx)->fd, m, flags | MSG_DONTWAIT);
}

static int sock_closing(void* ctx) {
  return ((sock_t*)ctx)->closing;
}

// onEvent(0, buffer, address, port, rxNs | undefined, ttl): the bytes are copied here.
static void sock_message(void* ctx, const rx_message* msg) {
  sock_t* s = (sock_t*)ctx;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[6];
  void* data;
  argv[0] = int_value(env, EV_MESSAGE);
  napi_create_buffer_copy(env, msg->len, msg->data, &data, &argv[1]);
  argv[2] = ipv4_string(env, &msg->from);
  argv[3] = int_value(env, msg->port);
  if (msg->has_rx)
    napi_create_bigint_uint64(env, msg->rx_ns, &argv[4]);
  else
    napi_get_undefined(env, &argv[4]);
  argv[5] = int_value(env, msg->ttl);
  emit(s, 6, argv);
  napi_close_handle_scope(env, scope);
}

// onEvent(1, buffer, destination, offender, type, code, info): buffer is what we sent.
static void sock_icmp_error(void* ctx, const rx_err_entry* e) {
  sock_t* s = (sock_t*)ctx;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[7];
  void* data;
  argv[0] = int_value(env, EV_ICMP_ERROR);
  napi_create_buffer_copy(env, e->len, e->data, &data, &argv[1]);
  argv[2] = ipv4_string(env, &e->dest);
  argv[3] = ipv4_string(env, &e->offender);
  argv[4] = int_value(env, e->type);
  argv[5] = int_value(env, e->code);
  argv[6] = int_value(env, e->info);
  emit(s, 7, argv);
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  sock_t* s = (sock_t*)h->data;
  (void)events;
  if (s->closing) return;
  if (status < 0) {
    napi_handle_scope scope;
    napi_open_handle_scope(s->env, &scope);
    napi_value argv[3];
    argv[0] = int_value(s->env, EV_POLL_ERROR);
    napi_create_string_utf8(s->env, uv_err_name(status), NAPI_AUTO_LENGTH, &argv[1]);
    napi_create_string_utf8(s->env, uv_strerror(status), NAPI_AUTO_LENGTH, &argv[2]);
    emit(s, 3, argv);
    napi_close_handle_scope(s->env, scope);
    return;
  }
  rx_io io = {s, sock_recv, sock_closing, sock_message, sock_icmp_error};
  rx_on_readable(&s->rx, &io);
}

static sock_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  sock_t* s = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, (void**)&s) != napi_ok || s == NULL) {
    napi_throw_error(env, "EADDON", "not a timestamping socket");
    return NULL;
  }
  return s;
}

static int parse_ipv4(napi_env env, napi_value v, struct in_addr* out) {
  char text[64];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, text, sizeof text, &len) != napi_ok) return 0;
  return inet_pton(AF_INET, text, out) == 1;
}

// Turns timestamping on. Returns the rx/tx capability actually granted.
static void enable_timestamps(sock_t* s, int want_tx) {
  int flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE;
  if (want_tx)
    flags |= SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
  if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) == 0) {
    s->rx_kernel = 1;
    s->tx_kernel = want_tx;
    return;
  }
  int on = 1;
  if (setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0) s->rx_kernel = 1;
}

// new Socket(kind, bindAddress, port, stamps, onEvent); stamps: 0 none, 1 receive, 2 both
static napi_value New(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  int32_t kind, port, stamps;
  struct in_addr bind_addr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 5 || napi_get_value_int32(env, argv[0], &kind) != napi_ok || kind < 0 || kind > 2 ||
      !parse_ipv4(env, argv[1], &bind_addr) ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535 ||
      napi_get_value_int32(env, argv[3], &stamps) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "Socket(kind, ipv4, port, stamps, onEvent)");
    return NULL;
  }
  napi_valuetype cbtype;
  CHECK(napi_typeof(env, argv[4], &cbtype));
  if (cbtype != napi_function) {
    napi_throw_type_error(env, "EINVAL", "onEvent must be a function");
    return NULL;
  }
  int fd;
  if (kind == KIND_UDP)
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  else if (kind == KIND_ICMP_DGRAM)
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  else
    fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return throw_errno(env, errno, "socket");

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr = bind_addr;
  sa.sin_port = htons((uint16_t)port);
  // Raw sockets have no port; binding one to 0.0.0.0 is a no-op, so only bind a real address.
  if (kind != KIND_ICMP_RAW || bind_addr.s_addr != htonl(INADDR_ANY)) {
    if (bind(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, e, "bind");
    }
  }
  if (kind == KIND_ICMP_DGRAM) {
    // ICMP errors about our echo requests arrive on the error queue only with IP_RECVERR.
    int on = 1;
    setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on);
  }
  if (kind == KIND_UDP) {
    int on = 1;
    setsockopt(fd, SOL_IP, IP_RECVTTL, &on, sizeof on);
  }
  socklen_t salen = sizeof sa;
  getsockname(fd, (struct sockaddr*)&sa, &salen);

  sock_t* s = (sock_t*)calloc(1, sizeof(sock_t));
  if (s == NULL) {
    close(fd);
    return throw_errno(env, ENOMEM, "calloc");
  }
  s->env = env;
  s->fd = fd;
  s->kind = kind;
  s->use_cmsg_id = 1;
  s->port = ntohs(sa.sin_port);
  inet_ntop(AF_INET, &sa.sin_addr, s->address, sizeof s->address);
  s->poll.data = s;
  s->handle_closed = 0;
  if (stamps > 0) enable_timestamps(s, stamps > 1);

  // libuv takes a bare POLLERR (which is what a non-empty error queue raises) for a dead fd and
  // stops the handle. With SO_SELECT_ERR_QUEUE the kernel raises POLLPRI alongside it, which
  // libuv passes on as UV_PRIORITIZED instead.
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_SELECT_ERR_QUEUE, &on, sizeof on);
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    napi_throw_error(env, "EADDON", "cannot poll the socket on this thread's event loop");
    return NULL;
  }
  s->polling = 1;
  if (uv_poll_start(&s->poll, UV_READABLE | UV_PRIORITIZED, on_poll) != 0) {
    // The handle is registered with the loop now: let libuv close it, then free.
    s->finalized = 1;
    shut(s);
    napi_throw_error(env, "EADDON", "cannot poll the socket on this thread's event loop");
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "podmesh:timestamping", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &s->async);
  napi_create_reference(env, argv[4], 1, &s->callback);
  napi_wrap(env, self, s, on_finalize, NULL, NULL);
  // Held while open: the socket lives until close(), like a dgram socket, even if JS drops it.
  napi_create_reference(env, self, 1, &s->self);
  napi_add_async_cleanup_hook(env, on_env_cleanup, s, &s->cleanup);
  return self;
}

// send(buffer, address, port) -> id
static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  sock_t* s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  if (s->closing) return throw_errno(env, EBADF, "send");
  void* data;
  size_t len;
  int32_t port;
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok ||
      !parse_ipv4(env, argv[1], &to.sin_addr) ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535)
    return throw_errno(env, EINVAL, "send");
  to.sin_port = htons((uint16_t)port);

  struct iovec iov = {data, len};
  union {
    char buf[CMSG_SPACE(sizeof(uint32_t))];
    struct cmsghdr align;
  } control;
  struct msghdr m;
  uint32_t id = s->next_id;
  ssize_t r;
  for (;;) {
    memset(&m, 0, sizeof m);
    m.msg_name = &to;
    m.msg_namelen = sizeof to;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
#ifdef SCM_TS_OPT_ID
    if (s->tx_kernel && s->use_cmsg_id) {
      // Name this send's timestamp ourselves: the match can't drift if a send fails.
      memset(&control, 0, sizeof control);
      m.msg_control = control.buf;
      m.msg_controllen = sizeof control.buf;
      struct cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_TS_OPT_ID;
      c->cmsg_len = CMSG_LEN(sizeof(uint32_t));
      memcpy(CMSG_DATA(c), &id, sizeof id);
    }
#endif
    r = sendmsg(s->fd, &m, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EINVAL && m.msg_control != NULL && !s->cmsg_id_works) {
      // A kernel older than 6.13: use its per-socket counter instead, which counts the
      // successful sends from 0 (none has succeeded yet on this socket).
      s->use_cmsg_id = 0;
      continue;
    }
    break;
  }
  if (r < 0) return throw_errno(env, errno, "sendmsg");
  if (m.msg_control != NULL) s->cmsg_id_works = 1;
  s->next_id = id + 1;
  rx_note_send(&s->rx, id, s->tx_kernel);
  napi_value out;
  CHECK(napi_create_uint32(env, id, &out));
  return out;
}

// txTime(id) -> bigint | undefined
static napi_value TxTime(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  uint32_t id;
  sock_t* s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &id) != napi_ok)
    return throw_errno(env, EINVAL, "txTime");
  uint64_t ns;
  if (!rx_tx_time(&s->rx, id, &ns)) {
    napi_get_undefined(env, &out);
    return out;
  }
  CHECK(napi_create_bigint_uint64(env, ns, &out));
  return out;
}

// setOption(level, name, value): an int setsockopt (SO_RCVBUF, IP_MTU_DISCOVER...).
static napi_value SetOption(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t level, name, value;
  sock_t* s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &level) != napi_ok ||
      napi_get_value_int32(env, argv[1], &name) != napi_ok ||
      napi_get_value_int32(env, argv[2], &value) != napi_ok)
    return throw_errno(env, EINVAL, "setsockopt");
  if (s->closing) return throw_errno(env, EBADF, "setsockopt");
  if (setsockopt(s->fd, level, name, &value, sizeof value) != 0)
    return throw_errno(env, errno, "setsockopt");
  return NULL;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t* s = unwrap(env, info, &argc, NULL);
  if (s == NULL || s->closing) return NULL;
  shut(s);
  napi_delete_reference(env, s->callback);
  napi_async_destroy(env, s->async);
  napi_reference_unref(env, s->self, NULL);
  return NULL;
}

static napi_value Getter(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* which;
  napi_value self, out;
  sock_t* s = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, NULL, &self, &which));
  CHECK(napi_unwrap(env, self, (void**)&s));
  switch ((intptr_t)which) {
    case 0:
      CHECK(napi_create_uint32(env, s->port, &out));
      break;
    case 1:
      CHECK(napi_create_string_utf8(env, s->address, NAPI_AUTO_LENGTH, &out));
      break;
    case 2:
      CHECK(napi_get_boolean(env, s->rx_kernel != 0, &out));
      break;
    default:
      CHECK(napi_get_boolean(env, s->tx_kernel != 0, &out));
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// TCP connect probe.
//
// new TcpConnect(address, port, bindAddress | "", onDone) starts one non-blocking connect and
// onDone(errnoName | null, elapsedNs, tcpiRttUs | undefined, synRetransmits) says how it went,
// exactly once, unless cancel() comes first:
//   - synchronously, inside the constructor, when the outcome is known by the time connect()
//     returns: a failure before the handshake (socket, bind, or connect() with anything but
//     EINPROGRESS: ENETUNREACH, EADDRNOTAVAIL...), or a handshake the kernel completed or had
//     refused inside connect() (loopback, often pods of one node: the SYN and its answer are
//     processed in softirq before the syscall returns);
//   - otherwise from the poll callback once the socket is writable (connected) or has an error
//     (SO_ERROR: ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT...).
// elapsedNs is CLOCK_MONOTONIC nanoseconds (a double) from just before connect() to the moment
// the outcome was seen (connect() returning, or the poll event). tcpiRttUs is TCP_INFO's
// tcpi_rtt on success: the kernel's handshake sample (SYN sent to SYN-ACK processed), which
// leaves out our own wake-up; undefined when the kernel has none. synRetransmits is TCP_INFO's
// tcpi_total_retrans on success (0 otherwise): SYNs the kernel sent again after the initial RTO
// because the first SYN or its SYN-ACK was lost. Such a handshake's RTT is no measurement of the
// path: with TCP timestamps the kernel takes it from the echoed timestamp, 1 ms at the timestamp
// clock's resolution when the first SYN was lost, about the RTO (1 s) when its SYN-ACK was;
// without them the connect time, about 1 s. Bad arguments throw a TypeError (EINVAL). A pending
// connect is polled on the calling thread's loop; a thread that ends mid-connect closes it
// through an async cleanup hook.
//
// The descriptor is closed before onDone runs, always with SO_LINGER {1, 0}: an established
// connection ends with a RST, never a FIN, so neither end keeps a TIME_WAIT socket (thousands
// of them at 1,000 probes/s; see src/probes/tcp.ts).

typedef struct {
  napi_env env;
  int fd;
  int handle_state;  // 0: no poll handle, 1: polling, 2: uv_close called
  int done;          // onDone called, failed synchronously, or cancelled
  int handle_closed;
  int finalized;
  uint64_t start_ns;
  uv_poll_t poll;
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
} conn_t;

static uint64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts_ns(&ts);
}

static void conn_maybe_free(conn_t* c) {
  if (c->handle_closed && c->finalized) free(c);
}

static void conn_on_closed(uv_handle_t* h) {
  conn_t* c = (conn_t*)h->data;
  c->handle_closed = 1;
  if (c->cleanup != NULL) {
    napi_remove_async_cleanup_hook(c->cleanup);
    c->cleanup = NULL;
  }
  conn_maybe_free(c);
}

// Closes the descriptor now, so the reset leaves at once, and the handle through libuv. uv_close
// comes first: it takes the fd out of epoll by number, which must happen before the number can be
// reused by the next connect. Safe to call twice.
static void conn_close(conn_t* c) {
  if (c->handle_state == 1) {
    c->handle_state = 2;
    uv_close((uv_handle_t*)&c->poll, conn_on_closed);
  } else if (c->handle_state == 0) {
    c->handle_closed = 1;
  }
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
}

// Drops what only JavaScript needed; only from JavaScript's thread while the env is alive.
static void conn_release(conn_t* c) {
  if (c->callback != NULL) napi_delete_reference(c->env, c->callback);
  if (c->async != NULL) napi_async_destroy(c->env, c->async);
  c->callback = NULL;
  c->async = NULL;
}

// The thread is going away mid-connect: close without calling JavaScript.
static void conn_on_cleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  conn_t* c = (conn_t*)arg;
  (void)handle;
  c->done = 1;
  conn_close(c);
}

static void conn_on_finalize(napi_env env, void* data, void* hint) {
  conn_t* c = (conn_t*)data;
  (void)env;
  (void)hint;
  c->finalized = 1;
  conn_maybe_free(c);
}

static void conn_args(napi_env env, int err, uint64_t elapsed, int64_t rtt_us, uint32_t retrans,
                      napi_value* argv) {
  if (err != 0)
    napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &argv[0]);
  else
    napi_get_null(env, &argv[0]);
  napi_create_double(env, (double)elapsed, &argv[1]);
  if (rtt_us > 0)
    napi_create_int64(env, rtt_us, &argv[2]);
  else
    napi_get_undefined(env, &argv[2]);
  napi_create_uint32(env, retrans, &argv[3]);
}

static void conn_on_poll(uv_poll_t* h, int status, int events) {
  conn_t* c = (conn_t*)h->data;
  uint64_t now = monotonic_ns();
  if (c->done) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  // libuv reports a failed connect (POLLERR) as UV_EBADF; SO_ERROR above has the real reason.
  if (err == 0 && status < 0) err = -status;
  if (err == 0 && !(events & UV_WRITABLE)) return;  // not connected yet
  int64_t rtt_us = 0;
  uint32_t retrans = 0;
  if (err == 0) {
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    // 0 means no sample: the handshake needed a retransmitted SYN and no TCP timestamps.
    // tcpi_total_retrans counts the SYNs sent again after the initial RTO (1 s): the first SYN
    // or its SYN-ACK was lost, and the RTT sample (if any) is not the path's (see conn_args).
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0) {
      rtt_us = ti.tcpi_rtt;
      retrans = ti.tcpi_total_retrans;
    }
  }
  c->done = 1;
  conn_close(c);  // c stays allocated until the close callback, which runs on a later turn

  napi_env env = c->env;
  napi_handle_scope scope;
  napi_value argv[4], cb, recv, result;
  bool pending = false;
  napi_open_handle_scope(env, &scope);
  conn_args(env, err, now - c->start_ns, rtt_us, retrans, argv);
  // napi_make_callback, not napi_call_function: the probe's promise continuations must run
  // before control goes back to libuv, as after Node's own I/O callbacks.
  if (napi_get_reference_value(env, c->callback, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv);
    napi_make_callback(env, c->async, recv, cb, 4, argv, &result);
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
  conn_release(c);
  napi_close_handle_scope(env, scope);
}

// new TcpConnect(address, port, bindAddress | "", onDone)
static napi_value TcpConnectNew(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], self;
  int32_t port;
  char bind_text[64];
  size_t bind_len = 0;
  struct sockaddr_in to, from;
  napi_valuetype cbtype = napi_undefined;
  memset(&to, 0, sizeof to);
  memset(&from, 0, sizeof from);
  to.sin_family = from.sin_family = AF_INET;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 4 || !parse_ipv4(env, argv[0], &to.sin_addr) ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535 ||
      napi_get_value_string_utf8(env, argv[2], bind_text, sizeof bind_text, &bind_len) !=
          napi_ok ||
      (bind_len > 0 && inet_pton(AF_INET, bind_text, &from.sin_addr) != 1) ||
      napi_typeof(env, argv[3], &cbtype) != napi_ok || cbtype != napi_function) {
    napi_throw_type_error(env, "EINVAL",
                          "TcpConnect(ipv4, port 0-65535, ipv4 or \"\", onDone function)");
    return NULL;
  }
  to.sin_port = htons((uint16_t)port);

  int err = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) {
    err = errno;
  } else {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (bind_len > 0 && bind(fd, (struct sockaddr*)&from, sizeof from) != 0) err = errno;
  }
  uint64_t start = monotonic_ns();
  // A non-blocking connect returns EINPROGRESS even on loopback; EINTR leaves it in progress too.
  if (err == 0 && connect(fd, (struct sockaddr*)&to, sizeof to) != 0 && errno != EINPROGRESS &&
      errno != EINTR)
    err = errno;
  uint64_t now = monotonic_ns();
  int64_t rtt_us = 0;
  int answered = err != 0;
  if (!answered) {
    // On loopback, and often between pods of one node, the kernel runs the whole handshake (or
    // the refusal) inside connect(). Then the answer is already here: no poll handle, no loop
    // turn, no cleanup hook. One getsockopt when it isn't.
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state != TCP_SYN_SENT) {
      socklen_t el = sizeof err;
      if (ti.tcpi_state == TCP_ESTABLISHED) {
        rtt_us = ti.tcpi_rtt;
        answered = 1;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err != 0) {
        answered = 1;
      }
    }
  }
  if (answered) {
    // Report it now, through onDone like every other outcome. Nothing is wrapped: cancel() on
    // this object finds nothing to cancel.
    if (fd >= 0) close(fd);
    napi_value args[4], recv;
    conn_args(env, err, now - start, rtt_us, 0, args);
    napi_get_global(env, &recv);
    napi_call_function(env, recv, argv[3], 4, args, NULL);  // an exception propagates to `new`
    return self;
  }

  conn_t* c = (conn_t*)calloc(1, sizeof(conn_t));
  if (c == NULL) {
    close(fd);
    return throw_errno(env, ENOMEM, "calloc");
  }
  c->env = env;
  c->fd = fd;
  c->start_ns = start;
  c->poll.data = c;
  uv_loop_t* loop;
  if (napi_wrap(env, self, c, conn_on_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(c);
    napi_throw_error(env, "EADDON", "napi_wrap failed");
    return NULL;
  }
  // From here on the finalizer frees c, once the handle (if any) is closed too.
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &c->poll, fd) != 0) {
    c->done = 1;
    conn_close(c);
    napi_throw_error(env, "EADDON", "cannot poll the socket on this thread's event loop");
    return NULL;
  }
  c->handle_state = 1;
  if (uv_poll_start(&c->poll, UV_WRITABLE, conn_on_poll) != 0) {
    c->done = 1;
    conn_close(c);
    napi_throw_error(env, "EADDON", "cannot poll the socket on this thread's event loop");
    return NULL;
  }
  napi_value name;
  napi_create_string_utf8(env, "podmesh:tcpConnect", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &c->async);
  napi_create_reference(env, argv[3], 1, &c->callback);
  napi_add_async_cleanup_hook(env, conn_on_cleanup, c, &c->cleanup);
  return self;
}

static napi_value TcpConnectCancel(napi_env env, napi_callback_info info) {
  napi_value self;
  size_t argc = 0;
  conn_t* c = NULL;
  // Not wrapped: answered inside `new`, nothing left to cancel.
  if (napi_get_cb_info(env, info, &argc, NULL, &self, NULL) != napi_ok ||
      napi_unwrap(env, self, (void**)&c) != napi_ok || c == NULL || c->done)
    return NULL;
  c->done = 1;
  conn_close(c);
  conn_release(c);
  return NULL;
}

static napi_value RealtimeNs(napi_env env, napi_callback_info info) {
  napi_value out;
  (void)info;
  CHECK(napi_create_bigint_uint64(env, realtime_ns(), &out));
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
      {"txTime", NULL, TxTime, NULL, NULL, NULL, napi_default, NULL},
      {"setOption", NULL, SetOption, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
      {"port", NULL, NULL, Getter, NULL, NULL, napi_default, (void*)0},
      {"address", NULL, NULL, Getter, NULL, NULL, napi_default, (void*)1},
      {"rxKernel", NULL, NULL, Getter, NULL, NULL, napi_default, (void*)2},
      {"txKernel", NULL, NULL, Getter, NULL, NULL, napi_default, (void*)3},
  };
  napi_property_descriptor tcp_props[] = {
      {"cancel", NULL, TcpConnectCancel, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, tcp, now;
  if (napi_define_class(env, "Socket", NAPI_AUTO_LENGTH, New, NULL, sizeof props / sizeof props[0],
                        props, &cls) != napi_ok ||
      napi_set_named_property(env, exports, "Socket", cls) != napi_ok ||
      napi_define_class(env, "TcpConnect", NAPI_AUTO_LENGTH, TcpConnectNew, NULL, 1, tcp_props,
                        &tcp) != napi_ok ||
      napi_set_named_property(env, exports, "TcpConnect", tcp) != napi_ok ||
      napi_create_function(env, "realtimeNs", NAPI_AUTO_LENGTH, RealtimeNs, NULL, &now) != napi_ok ||
      napi_set_named_property(env, exports, "realtimeNs", now) != napi_ok)
    return NULL;
  return exports;
}
