// The agent's row of the matrix (GET /api/v1/results, docs/api.md): the one declaration of what
// an agent sends and what the controller accepts. Two schemas, one set of fields:
//
//  - agentRowSchema: every field today's agent emits. The agent builds an AgentRow (its type),
//    and a test parses a live agent's row against it with every object made strict, so a field
//    the agent starts to emit without declaring it here fails.
//  - acceptedAgentRowSchema: the same row read by the controller, lenient on purpose where an
//    agent of another version may differ: `dns`, `ports` and `apiserver` default to [] and `self`
//    may be absent (rows from before those sections existed), a peer result's `run` and
//    `measuredAt` and a peer's `rotating` may be absent, the `probes` section and the DNS
//    entries' details are not checked (the controller reads neither). Unknown keys are dropped,
//    never refused, so an older controller keeps reading a newer agent.
//
// Field names are the wire names (protocol, rttSeconds, lastSuccess as ISO time), not the
// agent's internal ones (kind, rtt, lastSuccessMs).

import { z } from 'zod';
import { NETWORKS, PROBE_KINDS, SIZE_CLASSES } from '../core/types.ts';

export const API_VERSION = 'podmesh.io/v1';

/** RTT summary of the answered probes in the window, seconds. */
export const rttSchema = z.object({
  min: z.number(),
  p50: z.number(),
  p90: z.number(),
  p99: z.number(),
  max: z.number(),
  mean: z.number(),
});
export type Rtt = z.infer<typeof rttSchema>;

/** p50 / p99 / max of a DNS lookup's or a port connect's duration, seconds. */
export const latencySchema = z.object({ p50: z.number(), p99: z.number(), max: z.number() });
export type Latency = z.infer<typeof latencySchema>;

export const agentIdentitySchema = z.object({
  node: z.string(),
  network: z.enum(NETWORKS),
  zone: z.string(),
  address: z.string(),
});

// ---------- probes: what runs and how ----------

/** udp and tcp run when configured; nothing can stop them once the agent is up. */
const PLAIN_PROBE_REASONS = ['ok', 'disabled'] as const;
/** icmp needs a raw socket or unprivileged ping: `permission` when neither is allowed. */
export const ICMP_REASONS = ['ok', 'permission', 'disabled', 'error'] as const;
/** Where icmp runs: the engine's worker thread, or the main thread (raw-socket fallback). */
export const ICMP_THREADS = ['engine', 'main'] as const;
export const DNS_CHECK_REASONS = ['ok', 'disabled', 'error'] as const;
/** Where a probe kind's packet times come from (docs/timestamps.md). */
export const TIMESTAMP_SOURCES = ['kernel', 'userspace'] as const;

export const timestampInfoSchema = z.object({
  source: z.enum(TIMESTAMP_SOURCES),
  /** One line: what is used and, for userspace, why. */
  detail: z.string(),
});

export const agentProbesSchema = z.object({
  udp: z.object({ enabled: z.boolean(), reason: z.enum(PLAIN_PROBE_REASONS) }),
  tcp: z.object({ enabled: z.boolean(), reason: z.enum(PLAIN_PROBE_REASONS) }),
  icmp: z.object({
    enabled: z.boolean(),
    reason: z.enum(ICMP_REASONS),
    detail: z.string(),
    thread: z.enum(ICMP_THREADS).nullable(),
  }),
  /** The padded probes' packet size; null when MTU probes are off. */
  mtuBytes: z.number().nullable(),
  /** Per running probe kind. */
  timestamps: z.partialRecord(z.enum(PROBE_KINDS), timestampInfoSchema),
  /** DNS checks, and what the agent read from its resolv.conf. */
  dns: z.object({
    enabled: z.boolean(),
    reason: z.enum(DNS_CHECK_REASONS),
    detail: z.string(),
    nameserver: z.string().nullable(),
    search: z.array(z.string()).readonly(),
    ndots: z.number().nullable(),
  }),
});
export type AgentProbes = z.infer<typeof agentProbesSchema>;

// ---------- peers ----------

/**
 * The run of like results at the newest end of a window: `length` results in a row, counted back
 * from the newest, all succeeded (`ok`) or all failed, and before them `previous` results of the
 * other outcome (0 when the window holds no more). Bounded by the window. Triage judges a path
 * on these fresh samples when they prove its state changed (docs/triage.md, "Fresh samples").
 */
export const trailingRunSchema = z.object({
  ok: z.boolean(),
  length: z.number().int().positive(),
  previous: z.number().int().nonnegative(),
});
export type TrailingRunWire = z.infer<typeof trailingRunSchema>;

/** One protocol × size towards one peer, over the window. */
export const peerResultSchema = z.object({
  protocol: z.enum(PROBE_KINDS),
  size: z.enum(SIZE_CLASSES),
  sent: z.number().int().nonnegative(),
  lost: z.number().int().nonnegative(),
  lossRatio: z.number().min(0).max(1).nullable(),
  forwardLost: z.number().int().nonnegative(),
  reverseLost: z.number().int().nonnegative(),
  duplicates: z.number().int().nonnegative(),
  reordered: z.number().int().nonnegative(),
  rttSeconds: rttSchema.nullable(),
  lastSuccess: z.string().nullable(),
  /** The closed reason of the last failure (core FAILURE_REASONS), or null. */
  lastFailure: z.string().nullable(),
  /** The window's trailing run; null before the first result. Agents before it omit it. */
  run: trailingRunSchema.nullable(),
  /**
   * When the window's newest result was sent (ISO time): a rotating peer's cell is as old as
   * its last visit. Agents before issue 18's rotation omit it.
   */
  measuredAt: z.string(),
});
export type PeerResult = z.infer<typeof peerResultSchema>;

export const peerRowSchema = agentIdentitySchema.extend({
  /** `<this agent's network>-to-<peer's network>`. */
  path: z.string(),
  /** same-node, same-zone or cross-zone. */
  scope: z.string(),
  /**
   * A rotating visit (peers.rotation, docs/scale.md) rather than a core peer: probed once a
   * coverage period, one probe of each kind at its small size. Agents before it omit it.
   */
  rotating: z.boolean(),
  // At most one entry per protocol × size; the bound keeps a hostile row from costing much.
  results: z.array(peerResultSchema).max(64),
});
export type PeerRow = z.infer<typeof peerRowSchema>;

// ---------- DNS checks and port targets ----------

export const DNS_SERVER_KINDS = ['service', 'replica'] as const;
export const DNS_TRANSPORTS = ['udp', 'tcp'] as const;

/** One DNS check the agent runs: server × query × transport. */
export const dnsCheckSchema = z.object({
  serverKind: z.enum(DNS_SERVER_KINDS),
  server: z.string(),
  address: z.string(),
  port: z.number().int(),
  query: z.string(),
  name: z.string(),
  /** The absolute names the lookup tries, in order. */
  candidates: z.array(z.string()),
  transport: z.enum(DNS_TRANSPORTS),
  sent: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  answeredRatio: z.number().min(0).max(1).nullable(),
  outcomes: z.record(z.string(), z.number()),
  lastOutcome: z.string().nullable(),
  lastDetail: z.string().nullable(),
  latencySeconds: latencySchema.nullable(),
  /** The candidate that last got an answer with records. */
  answeredBy: z.string().nullable(),
  /** Queries the last lookup sent. */
  lastTried: z.number(),
  lastSuccess: z.string().nullable(),
  /** The window's trailing run of answered (ok) or failed lookups; null before the first. */
  run: trailingRunSchema.nullable(),
});
export type DnsCheck = z.infer<typeof dnsCheckSchema>;

export const PORT_EXPECTATIONS = ['open', 'closed'] as const;

/** One configured port target, as this agent's connects see it. */
export const portCheckSchema = z.object({
  target: z.string(),
  address: z.string(),
  port: z.number().int(),
  expected: z.enum(PORT_EXPECTATIONS),
  sent: z.number().int().nonnegative(),
  open: z.number().int().nonnegative(),
  openRatio: z.number().min(0).max(1).nullable(),
  outcomes: z.record(z.string(), z.number()),
  lastOutcome: z.string().nullable(),
  lastDetail: z.string().nullable(),
  connectSeconds: latencySchema.nullable(),
  /** The window's trailing run of accepted (ok) or not accepted connects; null before the first. */
  run: trailingRunSchema.nullable(),
});
export type PortCheck = z.infer<typeof portCheckSchema>;

/** service: the `kubernetes` Service VIP; endpoint: one API server address asked directly. */
export const APISERVER_TARGET_KINDS = ['service', 'endpoint'] as const;

/** One way to the API server, as this agent's checks (connect, TLS, /readyz) see it. */
export const apiServerCheckSchema = z.object({
  /** `service`, or the endpoint's `address:port`. */
  target: z.string(),
  kind: z.enum(APISERVER_TARGET_KINDS),
  address: z.string(),
  port: z.number().int(),
  sent: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  okRatio: z.number().min(0).max(1).nullable(),
  outcomes: z.record(z.string(), z.number()),
  lastOutcome: z.string().nullable(),
  lastDetail: z.string().nullable(),
  /** The last anonymous GET /readyz status (401/403: reached, not allowed); null if none. */
  readyz: z.number().int().nullable(),
  connectSeconds: latencySchema.nullable(),
  tlsSeconds: latencySchema.nullable(),
  /** The window's trailing run of ok or failed checks; null before the first. */
  run: trailingRunSchema.nullable(),
});
export type ApiServerCheck = z.infer<typeof apiServerCheckSchema>;

/** The prober's own health: a starved agent's latency numbers can't be trusted. */
export const selfHealthSchema = z.object({
  lateRatio: z.number().min(0).max(1).nullable(),
  latenessP99Seconds: z.number().nullable(),
  eventLoopP99Seconds: z.object({ main: z.number().nullable(), engine: z.number().nullable() }),
});
export type SelfHealth = z.infer<typeof selfHealthSchema>;

// ---------- the row ----------

/** Every field today's agent emits. */
export const agentRowSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('AgentResults'),
  source: agentIdentitySchema,
  generatedAt: z.string(),
  windowSeconds: z.number(),
  intervalMs: z.number(),
  probes: agentProbesSchema,
  peers: z.array(peerRowSchema).max(10_000),
  dns: z.array(dnsCheckSchema).max(10_000),
  ports: z.array(portCheckSchema).max(10_000),
  apiserver: z.array(apiServerCheckSchema).max(64),
  self: selfHealthSchema,
});
/** What the agent builds (no defaults or transforms: its input and output types are one). */
export type AgentRow = z.output<typeof agentRowSchema>;

/** What the controller accepts; see the header for where and why it is lenient. */
export const acceptedAgentRowSchema = agentRowSchema.extend({
  probes: z.record(z.string(), z.unknown()),
  // Agents before the trailing run send results without it: triage then judges on the window.
  peers: z
    .array(
      peerRowSchema.partial({ rotating: true }).extend({
        results: z.array(peerResultSchema.partial({ run: true, measuredAt: true })).max(64),
      }),
    )
    .max(10_000),
  dns: z
    .array(
      dnsCheckSchema.partial({
        address: true,
        port: true,
        candidates: true,
        answeredBy: true,
        lastTried: true,
        lastSuccess: true,
        run: true,
      }),
    )
    .max(10_000)
    .default([]),
  ports: z
    .array(portCheckSchema.partial({ run: true }))
    .max(10_000)
    .default([]),
  apiserver: z.array(apiServerCheckSchema).max(64).default([]),
  self: selfHealthSchema.optional(),
});
/** A row as the controller may receive it (older agents omit dns, ports, apiserver and self). */
export type AcceptedAgentRowInput = z.input<typeof acceptedAgentRowSchema>;
/** A row as the controller holds it after parsing (dns, ports and apiserver always present). */
export type AcceptedAgentRow = z.output<typeof acceptedAgentRowSchema>;
