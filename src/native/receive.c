// The timestamping addon's receive path, without sockets or JavaScript (receive.h says why it is
// separate). The parsers trust nothing the kernel hands over: a control message is read only if
// its whole payload lies inside the control buffer recvmsg() filled (a control buffer cut short
// by MSG_CTRUNC leaves a last message whose cmsg_len is shorter than its type), headers and
// payloads are copied out with memcpy (no alignment assumed), and lengths are clamped to the
// buffers they describe. fuzz/receive-fuzz.c holds them to that under AddressSanitizer.

#include "receive.h"

#include <errno.h>
#include <string.h>
#include <time.h>  // struct timespec, before linux/errqueue.h uses it

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

static uint64_t ts_ns(const struct timespec* ts) {
  return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

// The control messages of m, walked by offset: glibc's CMSG_FIRSTHDR does not check the first
// header's length against msg_controllen, and a zero cmsg_len would never advance.
typedef struct {
  const unsigned char* start;
  size_t len;
  size_t at;  // offset of the current header
  struct cmsghdr h;
} cmsg_walk;

static int walk_load(cmsg_walk* w) {
  if (w->start == NULL || w->at > w->len || w->len - w->at < sizeof(struct cmsghdr)) return 0;
  memcpy(&w->h, w->start + w->at, sizeof w->h);
  // A header that claims less than itself or more than the buffer holds ends the walk.
  if (w->h.cmsg_len < sizeof(struct cmsghdr) || w->h.cmsg_len > w->len - w->at) return 0;
  return 1;
}

static int walk_first(cmsg_walk* w, const struct msghdr* m) {
  w->start = (const unsigned char*)m->msg_control;
  w->len = m->msg_control == NULL ? 0 : m->msg_controllen;
  w->at = 0;
  return walk_load(w);
}

static int walk_next(cmsg_walk* w) {
  size_t step = CMSG_ALIGN(w->h.cmsg_len);  // cmsg_len <= len here, so this can't wrap
  if (step > w->len - w->at) return 0;
  w->at += step;
  return walk_load(w);
}

// Copies the current message's payload into out if it holds at least `need` bytes; otherwise 0.
static int walk_payload(const cmsg_walk* w, void* out, size_t need) {
  size_t data_off = CMSG_LEN(0);
  if (w->h.cmsg_len < data_off || w->h.cmsg_len - data_off < need) return 0;
  memcpy(out, w->start + w->at + data_off, need);
  return 1;
}

// The message's bytes: the first iovec, up to n, never past the buffer. data stays the buffer
// even for an empty message (Node-API copies from it).
static void body(const struct msghdr* m, ssize_t n, const unsigned char** data, size_t* len) {
  *data = NULL;
  *len = 0;
  if (m->msg_iov == NULL || m->msg_iovlen < 1) return;
  size_t cap = m->msg_iov[0].iov_len;
  *data = (const unsigned char*)m->msg_iov[0].iov_base;
  if (n > 0) *len = (size_t)n < cap ? (size_t)n : cap;
}

// The peer's IPv4 address and port, when recvmsg() filled in a whole sockaddr_in.
static void name(const struct msghdr* m, struct in_addr* addr, uint16_t* port) {
  struct sockaddr_in sa;
  addr->s_addr = 0;
  if (port != NULL) *port = 0;
  if (m->msg_name == NULL || m->msg_namelen < sizeof sa) return;
  memcpy(&sa, m->msg_name, sizeof sa);
  *addr = sa.sin_addr;
  if (port != NULL) *port = ntohs(sa.sin_port);
}

void rx_parse_message(const struct msghdr* m, ssize_t n, rx_message* out) {
  memset(out, 0, sizeof *out);
  out->ttl = -1;
  body(m, n, &out->data, &out->len);
  name(m, &out->from, &out->port);
  cmsg_walk w;
  for (int ok = walk_first(&w, m); ok; ok = walk_next(&w)) {
    if (w.h.cmsg_level == SOL_SOCKET && w.h.cmsg_type == SO_TIMESTAMPING) {
      struct scm_timestamping t;
      // ts[0] is the software stamp; all zero when only a hardware one was taken.
      if (walk_payload(&w, &t, sizeof t) && (t.ts[0].tv_sec != 0 || t.ts[0].tv_nsec != 0)) {
        out->rx_ns = ts_ns(&t.ts[0]);
        out->has_rx = 1;
      }
    } else if (w.h.cmsg_level == SOL_SOCKET && w.h.cmsg_type == SO_TIMESTAMPNS) {
      struct timespec t;
      if (walk_payload(&w, &t, sizeof t)) {
        out->rx_ns = ts_ns(&t);
        out->has_rx = 1;
      }
    } else if (w.h.cmsg_level == SOL_IP && w.h.cmsg_type == IP_TTL) {
      int ttl;
      if (walk_payload(&w, &ttl, sizeof ttl)) out->ttl = ttl;
    }
  }
}

void rx_parse_errqueue(const struct msghdr* m, ssize_t n, rx_err_entry* out) {
  memset(out, 0, sizeof *out);
  out->kind = RX_ERR_IGNORE;
  struct sock_extended_err ee;
  struct scm_timestamping tss;
  struct sockaddr_in offender;
  memset(&ee, 0, sizeof ee);
  memset(&tss, 0, sizeof tss);
  memset(&offender, 0, sizeof offender);
  int has_ee = 0, has_tss = 0, has_offender = 0;
  cmsg_walk w;
  for (int ok = walk_first(&w, m); ok; ok = walk_next(&w)) {
    if (w.h.cmsg_level == SOL_SOCKET && w.h.cmsg_type == SO_TIMESTAMPING) {
      has_tss = walk_payload(&w, &tss, sizeof tss);
    } else if (w.h.cmsg_level == SOL_IP && w.h.cmsg_type == IP_RECVERR) {
      // The kernel puts the offender's address right after the extended error
      // (SO_EE_OFFENDER); a message too short to hold it has none.
      struct {
        struct sock_extended_err ee;
        struct sockaddr_in offender;
      } both;
      has_ee = walk_payload(&w, &ee, sizeof ee);
      has_offender = walk_payload(&w, &both, sizeof both);
      if (has_offender) offender = both.offender;
    }
  }
  if (!has_ee) return;
  if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
    if (has_tss && ee.ee_info == SCM_TSTAMP_SND) {
      out->kind = RX_ERR_TX_STAMP;
      out->tx_id = ee.ee_data;
      out->tx_ns = ts_ns(&tss.ts[0]);
    }
  } else if (ee.ee_origin == SO_EE_ORIGIN_ICMP) {
    out->kind = RX_ERR_ICMP;
    body(m, n, &out->data, &out->len);
    name(m, &out->dest, NULL);
    if (has_offender) out->offender = offender.sin_addr;
    out->type = ee.ee_type;
    out->code = ee.ee_code;
    out->info = ee.ee_info;
  }
}

void rx_note_send(rx_state* st, uint32_t id, int stamped) {
  st->ring[id % RX_TX_RING].valid = 0;
  if (stamped) st->sent_since_drain = 1;
}

int rx_tx_time(const rx_state* st, uint32_t id, uint64_t* ns) {
  const rx_tx_slot* slot = &st->ring[id % RX_TX_RING];
  if (!slot->valid || slot->id != id) return 0;
  *ns = slot->ns;
  return 1;
}

typedef union {
  unsigned char bytes[RX_CONTROL_BYTES];
  struct cmsghdr align;
} control_buf;

static void prepare(struct msghdr* m, struct sockaddr_in* peer, struct iovec* iov,
                    control_buf* control) {
  memset(m, 0, sizeof *m);
  m->msg_name = peer;
  m->msg_namelen = sizeof *peer;
  m->msg_iov = iov;
  m->msg_iovlen = 1;
  m->msg_control = control->bytes;
  m->msg_controllen = sizeof control->bytes;
}

void rx_drain_errqueue(rx_state* st, const rx_io* io) {
  st->sent_since_drain = 0;
  for (int i = 0; i < RX_MAX_READS_PER_WAKE && !io->closing(io->ctx); i++) {
    struct sockaddr_in dest;
    control_buf control;
    // errbuf, not buf: rx_drain_messages may be holding a datagram in buf right now.
    struct iovec iov = {st->errbuf, sizeof st->errbuf};
    struct msghdr m;
    prepare(&m, &dest, &iov, &control);
    ssize_t n = io->recv(io->ctx, &m, MSG_ERRQUEUE);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: empty
    }
    rx_err_entry e;
    rx_parse_errqueue(&m, n, &e);
    if (e.kind == RX_ERR_TX_STAMP) {
      rx_tx_slot* slot = &st->ring[e.tx_id % RX_TX_RING];
      slot->id = e.tx_id;
      slot->ns = e.tx_ns;
      slot->valid = 1;
    } else if (e.kind == RX_ERR_ICMP) {
      io->icmp_error(io->ctx, &e);
    }
  }
}

void rx_drain_messages(rx_state* st, const rx_io* io) {
  for (int i = 0; i < RX_MAX_READS_PER_WAKE && !io->closing(io->ctx); i++) {
    struct sockaddr_in from;
    control_buf control;
    struct iovec iov = {st->buf, sizeof st->buf};
    struct msghdr m;
    prepare(&m, &from, &iov, &control);
    ssize_t n = io->recv(io->ctx, &m, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // A pending socket error (an ICMP error reported through sk_err) is consumed by this
      // read; its details, if any, are on the error queue. Keep reading.
      continue;
    }
    rx_message msg;
    rx_parse_message(&m, n, &msg);
    // A callback for an earlier datagram may have sent (promise continuations run inside it):
    // if so, file that send's transmit time before JS looks for it with this reply. This reads
    // into errbuf, so msg.data (in buf) keeps this datagram's bytes.
    if (st->sent_since_drain) rx_drain_errqueue(st, io);
    if (io->closing(io->ctx)) return;
    io->message(io->ctx, &msg);
  }
}

void rx_on_readable(rx_state* st, const rx_io* io) {
  // Error queue first: a reply can't arrive before its request's transmit timestamp was
  // queued, so after this the ring holds the T1 of every reply read below.
  rx_drain_errqueue(st, io);
  rx_drain_messages(st, io);
}
