// libFuzzer harness for the timestamping addon's receive path (src/native/receive.c): what a
// datagram, its control messages and the socket's error-queue entries turn into for JavaScript,
// and the loops that read them. Built with clang -fsanitize=fuzzer,address,undefined by
// fuzz.ts; `npm test` runs it for a few seconds (fuzz.test.ts), docs/timestamps.md ("Fuzzing")
// says how to run it for longer.
//
// One input is a small script for a fake kernel:
//   - a few datagrams and a few error-queue entries, each with its bytes, its source or
//     destination address (whole, cut short or absent) and control messages built from the
//     input: the ones the kernel sends (SO_TIMESTAMPING, SO_TIMESTAMPNS, IP_TTL, IP_RECVERR with
//     and without the offender, a transmit stamp, an ICMP error) or any level/type, with natural,
//     shorter, longer or arbitrary cmsg_len, and the control buffer possibly cut mid-message as
//     MSG_CTRUNC leaves it; datagrams longer than the receive buffer; EINTR and ECONNREFUSED
//     instead of a message;
//   - then what "JavaScript" does in each callback: nothing, a send (which lets the kernel queue
//     one more error-queue entry, as a send to an unreachable peer does), or close.
// Every record is first parsed directly from exactly sized heap buffers, so AddressSanitizer
// sees any read past what the kernel handed over; then the drain loops run over the queues with
// two checks of their own (abort() on failure): every datagram reaches its callback with its own
// bytes and sender (issue #14 item 1 was a datagram handed over with an ICMP error's payload),
// every ICMP error with its own payload, and no datagram is lost unless the socket was closed.
// Any input that trips a sanitizer or a check is a bug; libFuzzer saves it as crash-<sha1>.

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#include "../receive.h"

#define MAX_RECORDS 8
#define MAX_CMSGS 5
#define BUILD_BYTES 1024

typedef struct {
  const uint8_t* p;
  size_t n;
} input;

static uint8_t u8(input* in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static uint32_t u32(input* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | u8(in);
  return v;
}

// Copies up to `len` input bytes into out; the rest (input ran out) is a pattern, never zeros,
// so two records rarely share their bytes by accident.
static void fill(input* in, unsigned char* out, size_t len, unsigned salt) {
  size_t k = len < in->n ? len : in->n;
  if (k > 0) memcpy(out, in->p, k);
  in->p += k;
  in->n -= k;
  for (size_t i = k; i < len; i++) out[i] = (unsigned char)(i * 31u + salt * 7u + 1u);
}

// What the fake kernel hands over for one recvmsg().
typedef struct {
  int error;  // recvmsg() fails with this errno instead (EINTR, ECONNREFUSED), or 0
  unsigned char* data;
  size_t len;
  unsigned char* control;
  size_t controllen;
  struct sockaddr_in name;
  socklen_t namelen;
} record;

static size_t build_control(input* in, unsigned char* out, unsigned salt) {
  size_t used = 0;
  int count = u8(in) % (MAX_CMSGS + 1);
  for (int i = 0; i < count; i++) {
    uint8_t sel = u8(in);
    int level, type;
    size_t natural;
    int preset = -1;  // a well-formed extended error: its origin, type filled in below
    switch (sel % 9) {
      case 0: level = SOL_SOCKET, type = SO_TIMESTAMPING, natural = sizeof(struct scm_timestamping); break;
      case 1: level = SOL_SOCKET, type = SO_TIMESTAMPNS, natural = sizeof(struct timespec); break;
      case 2: level = SOL_IP, type = IP_TTL, natural = sizeof(int); break;
      case 3:
        level = SOL_IP, type = IP_RECVERR;
        natural = sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in);
        break;
      case 4: level = SOL_IP, type = IP_RECVERR, natural = sizeof(struct sock_extended_err); break;
      case 5:
        level = SOL_IP, type = IP_RECVERR, preset = SO_EE_ORIGIN_ICMP;
        natural = sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in);
        break;
      case 6:
        level = SOL_IP, type = IP_RECVERR, preset = SO_EE_ORIGIN_TIMESTAMPING;
        natural = sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in);
        break;
      case 7: level = u8(in), type = u8(in), natural = u8(in) % 64; break;
      default: level = (int)u32(in), type = (int)u32(in), natural = u8(in) % 64; break;
    }
    uint8_t mode = u8(in);
    size_t plen = natural;
    if (mode & 1) plen = u8(in) % (natural + 9);  // shorter than its type, or a little longer
    if (used + CMSG_SPACE(plen) > BUILD_BYTES) break;
    struct cmsghdr h;
    memset(&h, 0, sizeof h);
    h.cmsg_len = CMSG_LEN(plen);
    h.cmsg_level = level;
    h.cmsg_type = type;
    if (mode & 2) h.cmsg_len = (mode & 4) ? (size_t)u8(in) : (size_t)u32(in);  // a lying length
    memcpy(out + used, &h, sizeof h);
    unsigned char* payload = out + used + CMSG_LEN(0);
    fill(in, payload, plen, salt + (unsigned)i);
    if (preset >= 0 && plen >= sizeof(struct sock_extended_err)) {
      struct sock_extended_err ee;
      memcpy(&ee, payload, sizeof ee);
      ee.ee_origin = (uint8_t)preset;
      if (preset == SO_EE_ORIGIN_TIMESTAMPING && (mode & 8)) ee.ee_info = SCM_TSTAMP_SND;
      memcpy(payload, &ee, sizeof ee);
    }
    memset(payload + plen, 0, CMSG_SPACE(plen) - CMSG_LEN(plen));
    used += CMSG_SPACE(plen);
  }
  // MSG_CTRUNC: the kernel stops where the caller's buffer ends, mid-message.
  if (used > 0 && (u8(in) & 1)) used -= u8(in) % (used + 1);
  return used;
}

static void build_record(input* in, record* r, unsigned salt) {
  memset(r, 0, sizeof *r);
  uint8_t flags = u8(in);
  if ((flags & 7) == 6) r->error = EINTR;
  if ((flags & 7) == 7) r->error = ECONNREFUSED;
  // Mostly small; sometimes longer than the receive buffer, which cuts it (MSG_TRUNC).
  if (flags & 8) {
    r->len = (size_t)RX_BYTES + u8(in);
  } else {
    uint32_t hi = u8(in);
    r->len = ((hi << 8) | u8(in)) % 2048;
  }
  r->data = malloc(r->len ? r->len : 1);
  fill(in, r->data, r->len, salt);
  switch ((flags >> 4) % 3) {
    case 0:
      r->namelen = sizeof r->name;
      r->name.sin_family = AF_INET;
      r->name.sin_addr.s_addr = u32(in);
      r->name.sin_port = (uint16_t)u32(in);
      break;
    case 1:
      r->namelen = u8(in) % sizeof r->name;  // shorter than a sockaddr_in
      fill(in, (unsigned char*)&r->name, r->namelen, salt);
      break;
    default:
      r->namelen = 0;
  }
  unsigned char control[BUILD_BYTES];
  r->controllen = build_control(in, control, salt);
  if (r->controllen > 0) {
    r->control = malloc(r->controllen);
    memcpy(r->control, control, r->controllen);
  }
}

// The pure parsers on exactly sized heap copies: a read past any of them is an ASan report.
static void parse_directly(const record* r) {
  unsigned char* data = malloc(r->len ? r->len : 1);
  memcpy(data, r->data, r->len);
  struct iovec iov = {data, r->len};
  struct sockaddr_in* name = r->namelen ? malloc(r->namelen) : NULL;
  if (name != NULL) memcpy(name, &r->name, r->namelen);
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = name;
  m.msg_namelen = r->namelen;
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = r->control;
  m.msg_controllen = r->controllen;
  rx_message msg;
  rx_parse_message(&m, (ssize_t)r->len, &msg);
  if (msg.len != r->len || (msg.len > 0 && msg.data != data)) abort();
  rx_err_entry e;
  rx_parse_errqueue(&m, (ssize_t)r->len, &e);
  if (e.kind == RX_ERR_ICMP && e.len != r->len) abort();
  free(data);
  free(name);
}

typedef struct {
  record items[MAX_RECORDS];
  int count;
  int next;     // next to hand over
  int visible;  // handed over only up to here (the error queue grows as "JavaScript" sends)
} queue;

typedef struct {
  rx_state* st;
  input script;  // what the callbacks do
  queue dgrams, errq;
  const record* last_dgram;  // the datagram recvmsg() handed over last
  const record* last_err;
  int holding;  // a datagram has been read and not yet handed to its callback
  int served_dgrams, delivered, closing, interleaved;
  uint32_t next_id;
} fake;

static ssize_t fake_recv(void* ctx, struct msghdr* m, int flags) {
  fake* f = (fake*)ctx;
  queue* q = (flags & MSG_ERRQUEUE) ? &f->errq : &f->dgrams;
  if (q->next >= q->visible) {
    errno = EAGAIN;
    return -1;
  }
  const record* r = &q->items[q->next++];
  if (r->error != 0) {
    errno = r->error;
    return -1;
  }
  m->msg_flags = 0;
  size_t cap = m->msg_iov[0].iov_len;
  size_t n = r->len < cap ? r->len : cap;
  memcpy(m->msg_iov[0].iov_base, r->data, n);
  if (n < r->len) m->msg_flags |= MSG_TRUNC;
  if (m->msg_name != NULL) {
    socklen_t nl = r->namelen < m->msg_namelen ? r->namelen : m->msg_namelen;
    memcpy(m->msg_name, &r->name, nl);
    m->msg_namelen = nl;
  }
  size_t cl = r->controllen < m->msg_controllen ? r->controllen : m->msg_controllen;
  if (cl > 0) memcpy(m->msg_control, r->control, cl);
  m->msg_controllen = cl;
  if (cl < r->controllen) m->msg_flags |= MSG_CTRUNC;
  if (flags & MSG_ERRQUEUE) {
    f->last_err = r;
  } else {
    f->last_dgram = r;
    f->served_dgrams++;
    f->holding = 1;
  }
  return (ssize_t)n;
}

static int fake_closing(void* ctx) {
  return ((fake*)ctx)->closing;
}

// What a callback does: nothing, close, or (most often: that is what probes do) send, which lets
// the kernel queue one more error-queue entry; a send on a socket without transmit stamps
// doesn't make the loop drain the error queue early.
static void react(fake* f) {
  uint8_t op = u8(&f->script) % 8;
  if (op == 7) {
    f->closing = 1;
  } else if (op != 0) {
    rx_note_send(f->st, f->next_id++, op != 6);
    if (f->errq.visible < f->errq.count) f->errq.visible++;
  }
}

static void same_bytes(const char* what, const record* r, const unsigned char* data, size_t len) {
  size_t want = r->len < RX_BYTES ? r->len : RX_BYTES;
  if (len != want || (len > 0 && memcmp(data, r->data, len) != 0)) {
    fprintf(stderr, "%s reached JavaScript with other bytes (%zu, want %zu)\n", what, len, want);
    abort();
  }
}

static void fake_message(void* ctx, const rx_message* msg) {
  fake* f = (fake*)ctx;
  if (f->last_dgram == NULL) abort();
  same_bytes("a datagram", f->last_dgram, msg->data, msg->len);
  struct in_addr want = {0};
  if (f->last_dgram->namelen >= sizeof(struct sockaddr_in)) want = f->last_dgram->name.sin_addr;
  if (msg->from.s_addr != want.s_addr) {
    fprintf(stderr, "a datagram reached JavaScript with another sender\n");
    abort();
  }
  f->delivered++;
  f->holding = 0;
  react(f);
}

__attribute__((noinline)) static void interleaved(fake* f) {
  f->interleaved++;
}

static void fake_icmp_error(void* ctx, const rx_err_entry* e) {
  fake* f = (fake*)ctx;
  if (f->last_err == NULL) abort();
  same_bytes("an ICMP error", f->last_err, e->data, e->len);
  // A breadcrumb for the fuzzer: an edge of its own when an error is delivered while a datagram
  // waits in the other buffer (item 1's moment), so inputs that get there are kept and mutated.
  if (f->holding) interleaved(f);
  react(f);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Static: 130 KiB of buffers; reset for every input.
  static rx_state st;
  memset(&st, 0, sizeof st);
  input in = {data, size};
  fake f;
  memset(&f, 0, sizeof f);
  f.st = &st;
  f.dgrams.count = u8(&in) % (MAX_RECORDS + 1);
  f.errq.count = u8(&in) % (MAX_RECORDS + 1);
  for (int i = 0; i < f.dgrams.count; i++) build_record(&in, &f.dgrams.items[i], (unsigned)i);
  for (int i = 0; i < f.errq.count; i++)
    build_record(&in, &f.errq.items[i], 100u + (unsigned)i);
  for (int i = 0; i < f.dgrams.count; i++) parse_directly(&f.dgrams.items[i]);
  for (int i = 0; i < f.errq.count; i++) parse_directly(&f.errq.items[i]);

  f.dgrams.visible = f.dgrams.count;
  f.errq.visible = u8(&in) % (f.errq.count + 1);
  int wakes = 1 + u8(&in) % 3;
  f.script = in;
  rx_io io = {&f, fake_recv, fake_closing, fake_message, fake_icmp_error};
  for (int w = 0; w < wakes && !f.closing; w++) rx_on_readable(&st, &io);

  // Every datagram handed over reached its callback, unless the socket closed meanwhile.
  if (!f.closing && f.delivered != f.served_dgrams) {
    fprintf(stderr, "%d datagrams read, %d delivered\n", f.served_dgrams, f.delivered);
    abort();
  }
  // Transmit times are looked up by id; any id is a fair question.
  uint64_t ns;
  for (uint32_t id = 0; id < f.next_id + 2; id++) (void)rx_tx_time(&st, id, &ns);

  for (int i = 0; i < f.dgrams.count; i++) {
    free(f.dgrams.items[i].data);
    free(f.dgrams.items[i].control);
  }
  for (int i = 0; i < f.errq.count; i++) {
    free(f.errq.items[i].data);
    free(f.errq.items[i].control);
  }
  return 0;
}
