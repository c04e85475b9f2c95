// Statistics for triage: every claim a rule makes about loss ("this path loses more than 5%",
// "MTU-sized probes are lost far more than small ones", "TCP fails more than the path's loss
// explains") is a test on the counts, not a comparison of two ratios, so that chance never
// names a cause. A window of 60 probes that loses 1 is not a lossy path; 30% random loss that
// happens to hit MTU-sized probes a little more is not an MTU black hole.
//
// One confidence for everything (triage's `confidence`, default 0.99): a proportion's interval
// is the two-sided Wilson score interval at that confidence, and a claim is made only when the
// interval lies wholly beyond the threshold, i.e. a one-sided test whose error is at most
// (1 - confidence) / 2 = 0.5%. Two proportions are compared with the signed root of the
// likelihood-ratio statistic (G-test, 1 degree of freedom) against the same z, or, when either
// group has fewer than 30 probes, with Fisher's exact test at the same level, plus a floor on
// the difference itself (significant *and* large: with thousands of probes a 1-point difference
// is significant but says nothing about the cause). A rule that makes such a comparison on every
// link of the cluster holds the whole round's family of them at the confidence (Bonferroni):
// a cause is named in a healthy-but-lossy round with probability at most 1 - confidence.
//
// Multi-packet exchanges. A probe is a round trip: UDP (STAMP) and ICMP echo send one packet
// each way; a TCP connect probe completes when the SYN-ACK is back (SYN out, SYN-ACK back: the
// final ACK and the probe's reset aren't waited for), so it is 2 packets too, one each way. With
// per-packet loss p in each direction an exchange of k packets fails with 1 - (1 - p)^k. Linux
// retransmits an unanswered SYN after 1 s (then 3 s, 7 s...), and the server its SYN-ACK likewise,
// so a connect within probes.timeoutMs gets 1 + (retransmits that fit) tries; at the default
// 1000 ms timeout that is one try and the connect fails exactly as often as a UDP or ICMP round
// trip. More tries only make TCP fail less, so the one-try figure is an upper bound on what loss
// alone explains: TCP is called blocked only when it fails significantly and materially more.
//
// Written here rather than taken from npm: the checked packages (jstat, unmaintained and
// untyped; @stdlib's split packages, dozens of dependencies for one interval) are large for
// about sixty lines of well-known formulas, which the tests check against published values.

/** Probes sent and lost (lost may be fractional: a loss-weighted pool of cells). */
export interface Counts {
  readonly sent: number;
  readonly lost: number;
}

export interface Interval {
  /** The point estimate lost/sent (0 when nothing was sent). */
  readonly ratio: number;
  readonly lo: number;
  readonly hi: number;
}

export const DEFAULT_CONFIDENCE = 0.99;

/**
 * The standard normal quantile (inverse CDF), P. J. Acklam's rational approximation (relative
 * error below 1.2e-9 over (0, 1)).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p <= 0 ? -Infinity : Infinity;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269];
  const a4 = -30.66479806614716;
  const a5 = 2.506628277459239;
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972];
  const b4 = -13.28068155288572;
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734];
  const c4 = 4.374664141464968;
  const c5 = 2.938163982698783;
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number): number =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c4) * q + c5) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a4) * r + a5) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b4) * r + 1)
  );
}

/** z of a two-sided interval at this confidence (0.99 → 2.576). */
export function zOf(confidence: number = DEFAULT_CONFIDENCE): number {
  const c = Number.isFinite(confidence) ? Math.min(0.999999, Math.max(0.5, confidence)) : 0.99;
  return normalQuantile(1 - (1 - c) / 2);
}

/** Counts made sane: sent ≥ 0, 0 ≤ lost ≤ sent; anything not finite is 0. */
function clean(c: Counts): Counts {
  const sent = Number.isFinite(c.sent) && c.sent > 0 ? c.sent : 0;
  const lost = Number.isFinite(c.lost) && c.lost > 0 ? Math.min(c.lost, sent) : 0;
  return { sent, lost };
}

/** The Wilson score interval of the loss ratio; [0, 1] when nothing was sent. */
export function wilson(counts: Counts, confidence: number = DEFAULT_CONFIDENCE): Interval {
  const { sent: n, lost } = clean(counts);
  if (n === 0) return { ratio: 0, lo: 0, hi: 1 };
  const p = lost / n;
  const z = zOf(confidence);
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At p = 0 or 1 one end is exactly 0 or 1; rounding must not move it.
  return {
    ratio: p,
    lo: lost === 0 ? 0 : Math.max(0, centre - half),
    hi: lost === n ? 1 : Math.min(1, centre + half),
  };
}

/** Whether the loss is significantly at or above p0 (the interval's low end reaches it). */
export function atLeast(counts: Counts, p0: number, confidence = DEFAULT_CONFIDENCE): boolean {
  return clean(counts).sent > 0 && wilson(counts, confidence).lo >= p0;
}

/** The loss of an exchange of k packets at per-packet loss p: 1 - (1 - p)^k. */
export function exchangeLoss(p: number, k: number): number {
  const q = Math.min(1, Math.max(0, p));
  return 1 - Math.pow(1 - q, k);
}

/** The per-packet loss behind an exchange of k packets that fails with ratio `loss`. */
export function perPacketLoss(loss: number, k: number): number {
  const q = Math.min(1, Math.max(0, loss));
  return 1 - Math.pow(1 - q, 1 / k);
}

/**
 * What random loss alone makes a TCP connect probe fail, given the round-trip loss of UDP or
 * ICMP probes on the same path (2 packets, one each way) and the tries that fit in the timeout
 * (1 at timeoutMs ≤ 1000: see the header). Each try is the same 2-packet exchange.
 */
export function handshakeLoss(roundTripLoss: number, tries = 1): number {
  const p = perPacketLoss(roundTripLoss, 2);
  return Math.pow(exchangeLoss(p, 2), Math.max(1, Math.floor(tries)));
}

/** SYN tries within a connect timeout: Linux resends after 1 s, 3 s, 7 s, 15 s ... */
export function synTries(timeoutMs: number): number {
  let tries = 1;
  for (let at = 1000, rto = 1000; at < timeoutMs && tries < 8; rto *= 2, at += rto) tries++;
  return tries;
}

const xlogy = (x: number, y: number): number => (x === 0 ? 0 : x * Math.log(x / y));

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7: about 15 significant digits). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const lnChoose = (n: number, k: number): number =>
  lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);

/**
 * Fisher's exact test, one-sided: the probability, with both groups losing alike, that A loses
 * at least as many as it did (counts rounded to whole probes).
 */
export function fisherGreater(a: Counts, b: Counts): number {
  const na = Math.round(clean(a).sent);
  const nb = Math.round(clean(b).sent);
  const xa = Math.min(na, Math.round(clean(a).lost));
  const xb = Math.min(nb, Math.round(clean(b).lost));
  const n = na + nb;
  const k = xa + xb;
  const denom = lnChoose(n, na);
  let p = 0;
  for (let x = xa; x <= Math.min(na, k); x++)
    p += Math.exp(lnChoose(k, x) + lnChoose(n - k, na - x) - denom);
  return Math.min(1, p);
}

/** Below this many probes in either group the G-test's normal approximation is not trusted. */
const EXACT_BELOW = 30;

/**
 * Signed root of the likelihood-ratio statistic for "A's loss ratio differs from B's":
 * positive when A loses more. Approximately standard normal when both lose alike.
 */
export function lrZ(a: Counts, b: Counts): number {
  const A = clean(a);
  const B = clean(b);
  const n = A.sent + B.sent;
  if (A.sent === 0 || B.sent === 0) return 0;
  const lost = A.lost + B.lost;
  const p = lost / n;
  const cells: [number, number][] = [
    [A.lost, A.sent * p],
    [A.sent - A.lost, A.sent * (1 - p)],
    [B.lost, B.sent * p],
    [B.sent - B.lost, B.sent * (1 - p)],
  ];
  const g = 2 * cells.reduce((s, [o, e]) => s + (e > 0 ? xlogy(o, e) : 0), 0);
  const root = Math.sqrt(Math.max(0, g));
  return A.lost / A.sent >= B.lost / B.sent ? root : -root;
}

export interface Comparison {
  /** Point difference of the loss ratios, A - B. */
  readonly diff: number;
  readonly z: number;
  /** A loses significantly more than B (z at or over the confidence's z). */
  readonly significant: boolean;
  /** ... and by at least the floor. */
  readonly material: boolean;
}

/** "A's loss is significantly and materially greater than B's." */
export function compare(
  a: Counts,
  b: Counts,
  minDiff: number,
  confidence = DEFAULT_CONFIDENCE,
): Comparison {
  const A = clean(a);
  const B = clean(b);
  const diff = (A.sent > 0 ? A.lost / A.sent : 0) - (B.sent > 0 ? B.lost / B.sent : 0);
  const z = lrZ(A, B);
  // Small groups (a handful of reflections left at heavy loss) get the exact test.
  const exact = Math.min(A.sent, B.sent) < EXACT_BELOW;
  const significant =
    A.sent > 0 &&
    B.sent > 0 &&
    diff > 0 &&
    (exact ? fisherGreater(A, B) <= (1 - confidence) / 2 : z >= zOf(confidence));
  return { diff, z, significant, material: significant && diff >= minDiff };
}

/**
 * The confidence each of m comparisons needs for the whole family to hold at `confidence`
 * (Bonferroni): a rule that compares every link of a 50-node cluster makes thousands of tests a
 * round, and at 99% each, dozens would pass by chance.
 */
export function bonferroni(confidence: number, m: number): number {
  return 1 - (1 - confidence) / Math.max(1, Math.floor(m));
}

/** Counts added up. */
export function pool(list: Iterable<Counts>): Counts {
  let sent = 0;
  let lost = 0;
  for (const c of list) {
    const x = clean(c);
    sent += x.sent;
    lost += x.lost;
  }
  return { sent, lost };
}
