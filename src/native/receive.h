// The timestamping addon's receive path without sockets or JavaScript: what one recvmsg() result
// (datagram bytes, control messages, error-queue entries) tells JavaScript, the ring of transmit
// timestamps, and the drain loops that read a socket's error queue and datagrams. timestamping.c
// plugs in recvmsg() and the Node-API calls (receive_io); fuzz/receive-fuzz.c plugs in a fake
// kernel fed by libFuzzer, so every byte the kernel could hand over is parsed here, by pure
// functions that never read past the lengths they were given (docs/timestamps.md, "Fuzzing").
//
// Why the loops live here too: issue #14 item 1 was a loop bug, not a parsing bug. The datagram
// and the error queue were read into one buffer, so draining the error queue between reading a
// datagram and handing it to JavaScript replaced its bytes with a queued ICMP error's payload
// (our own echo request to another peer). Each queue now has its own buffer, and the fuzz
// harness checks that every datagram and error reaches its callback with its own bytes.

#ifndef PODMESH_RECEIVE_H
#define PODMESH_RECEIVE_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define RX_TX_RING 4096
#define RX_BYTES 65536
// Bound the work per wake-up so one busy socket can't starve the rest of the loop.
#define RX_MAX_READS_PER_WAKE 256
// Room for every control message the addon asks for (timestamps, TTL, extended error + offender).
#define RX_CONTROL_BYTES 512

/** A datagram, as JavaScript gets it: onEvent(0, data, from, port, rxNs | undefined, ttl). */
typedef struct {
  const unsigned char* data;  // points into the buffer the datagram was read into
  size_t len;
  struct in_addr from;
  uint16_t port;  // host order
  int has_rx;     // the kernel stamped it: rx_ns is its receive time (CLOCK_REALTIME ns)
  uint64_t rx_ns;
  int ttl;  // -1: unknown
} rx_message;

typedef enum {
  RX_ERR_IGNORE = 0,  // nothing for anyone: no extended error, an unknown origin, a cut entry
  RX_ERR_TX_STAMP,    // a transmit timestamp: goes into the ring, not to JavaScript
  RX_ERR_ICMP,        // an ICMP error about something we sent: onEvent(1, ...)
} rx_err_kind;

/** One error-queue entry. For RX_ERR_ICMP, data/len is the payload we sent, as the kernel quotes it. */
typedef struct {
  rx_err_kind kind;
  uint32_t tx_id;  // RX_ERR_TX_STAMP: the send's id (OPT_ID)
  uint64_t tx_ns;
  const unsigned char* data;  // RX_ERR_ICMP
  size_t len;
  struct in_addr dest;      // where the packet that caused it was going
  struct in_addr offender;  // who sent the ICMP error (0.0.0.0 when the kernel didn't say)
  uint8_t type;
  uint8_t code;
  uint32_t info;  // e.g. the next-hop MTU of "fragmentation needed"
} rx_err_entry;

/**
 * Parses a datagram read by recvmsg() (n bytes, m's control messages and name as the kernel
 * filled them in). Pure: reads only within m's buffers and the lengths m gives.
 */
void rx_parse_message(const struct msghdr* m, ssize_t n, rx_message* out);

/** Parses one entry read by recvmsg(MSG_ERRQUEUE). Pure, like rx_parse_message. */
void rx_parse_errqueue(const struct msghdr* m, ssize_t n, rx_err_entry* out);

typedef struct {
  uint32_t id;
  int valid;
  uint64_t ns;
} rx_tx_slot;

/** One socket's receive state. */
typedef struct {
  int sent_since_drain;  // a send may have queued a transmit timestamp since the last drain
  rx_tx_slot ring[RX_TX_RING];
  unsigned char buf[RX_BYTES];     // datagrams
  unsigned char errbuf[RX_BYTES];  // error-queue entries: never the datagrams' buffer (item 1)
} rx_state;

/** What the drain loops need from the outside world. */
typedef struct {
  void* ctx;
  /** recvmsg(fd, m, flags | MSG_DONTWAIT): bytes, or -1 with errno set. */
  ssize_t (*recv)(void* ctx, struct msghdr* m, int flags);
  /** The socket is being closed: stop reading. */
  int (*closing)(void* ctx);
  /** Hands a datagram to JavaScript; may send (rx_note_send) or close. */
  void (*message)(void* ctx, const rx_message* msg);
  /** Hands an ICMP error to JavaScript; may send or close. */
  void (*icmp_error)(void* ctx, const rx_err_entry* e);
} rx_io;

/**
 * Send `id` succeeded: forget any older time filed in its slot; when the socket stamps sends
 * (`stamped`), its transmit time will be on the error queue shortly.
 */
void rx_note_send(rx_state* st, uint32_t id, int stamped);
/** The kernel's transmit time of send `id`, if it has been read off the error queue. */
int rx_tx_time(const rx_state* st, uint32_t id, uint64_t* ns);

/** Everything on the error queue: transmit timestamps go to the ring, ICMP errors to io. */
void rx_drain_errqueue(rx_state* st, const rx_io* io);
/** Every queued datagram to io, draining the error queue again after a callback sent. */
void rx_drain_messages(rx_state* st, const rx_io* io);
/** One wake-up: the error queue first (a reply can't come before its request's TX time), then datagrams. */
void rx_on_readable(rx_state* st, const rx_io* io);

#endif
