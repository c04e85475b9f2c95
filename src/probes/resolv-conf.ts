// The Pod's resolver configuration: parses /etc/resolv.conf content the way glibc's stub
// resolver does, and expands a name into the ordered list of absolute names that resolver
// would query. With this a DNS check can ask the same questions the Pod's applications ask, so
// "the short name fails but the FQDN works" (search list, ndots) becomes visible.
//
// Parsing follows glibc (resolv/res_init.c, 2.26 and later), quirks included, because that is
// what the Pods' applications see:
// - a comment is a line whose first character is '#' or ';'; keywords must start the line and
//   be followed by a space or tab. Text after an address on a nameserver line is ignored, but a
//   trailing comment on a search line is not: glibc takes its words as search domains too. We
//   keep them (as glibc would) and add a warning.
// - nameserver: every line is parsed, only the first 3 (MAXNS) are used.
// - search and domain replace each other: the last such line wins. domain keeps only its first
//   word. Without either, glibc takes the domain part of the host name (pass `hostname`).
// - options: ndots:N (max 15), timeout:N (max 30), attempts:N (max 5); N is read like atoi(),
//   so a value without leading digits counts as 0. Several options lines add up.
// - glibc's LOCALDOMAIN and RES_OPTIONS environment overrides are not applied.
//
// Nothing here throws on odd input: unknown keywords and options are ignored and everything
// questionable is described in `warnings`.
//
// Expansion (expandName) follows glibc's res_search():
// - a name ending in '.' is queried as-is only;
// - with at least ndots dots, the name as-is first, then name + each search domain;
// - with fewer dots, name + each search domain first, then the name as-is (skipped for a name
//   without dots when `options no-tld-query` is set);
// - a search domain "." stands for the root: the name as-is, tried in its place and not again.
// glibc goes down the list while answers are NXDOMAIN, NODATA or SERVFAIL; it stops at the first
// answer with records, and at any other failure (a timeout, REFUSED). See `searchContinues`.
//
// musl (Alpine images) differs, as of musl 1.2's name_from_dns_search(): a name with ndots or more
// dots (or a trailing dot) is queried as-is only, never with the search list; a name with fewer
// dots tries each search domain, then the name as-is, stopping at the first error that is not a
// plain "no such name" (e.g. SERVFAIL or a timeout). musl also queries A and AAAA in parallel,
// only fell back to TCP on a truncated answer from 1.2.4 on, and reads at most 255 characters
// of the search line. We implement glibc's rules.

/** glibc's limits (resolv.h): MAXNS, RES_MAXNDOTS, RES_MAXRETRANS, RES_MAXRETRY. */
export const MAX_NAMESERVERS = 3;
export const MAX_NDOTS = 15;
export const MAX_TIMEOUT_SECONDS = 30;
export const MAX_ATTEMPTS = 5;
/** Search domains beyond this were silently dropped by glibc before 2.26. */
export const LEGACY_MAX_SEARCH = 6;

export interface ResolverConfig {
  /** The nameservers the resolver uses, in order: at most 3, IPv4 or IPv6 literals. */
  readonly nameservers: readonly string[];
  /** Search domains in order, without trailing dots (a lone "." stands for the root). */
  readonly search: readonly string[];
  readonly ndots: number;
  /** Seconds to wait for each server before trying the next (glibc's retrans). */
  readonly timeoutSeconds: number;
  /** Rounds over the server list. */
  readonly attempts: number;
  /** options rotate: spread queries over the servers instead of always starting at the first. */
  readonly rotate: boolean;
  /** options use-vc: the resolver uses TCP for every query. */
  readonly useTcp: boolean;
  readonly edns0: boolean;
  readonly singleRequest: boolean;
  readonly singleRequestReopen: boolean;
  /** options no-tld-query: a name without dots is never queried as-is. */
  readonly noTldQuery: boolean;
  /** Human-readable notes on anything odd; empty for a clean file. */
  readonly warnings: readonly string[];
}

export const DEFAULT_RESOLVER_CONFIG: ResolverConfig = {
  nameservers: [],
  search: [],
  ndots: 1,
  timeoutSeconds: 5,
  attempts: 2,
  rotate: false,
  useTcp: false,
  edns0: false,
  singleRequest: false,
  singleRequestReopen: false,
  noTldQuery: false,
  warnings: [],
};

export interface ParseOptions {
  /** The host name, used like glibc does when there is neither search nor domain. */
  readonly hostname?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const FLAG_OPTIONS: Record<string, keyof ResolverConfig | null> = {
  rotate: 'rotate',
  'use-vc': 'useTcp',
  edns0: 'edns0',
  'single-request': 'singleRequest',
  'single-request-reopen': 'singleRequestReopen',
  'no-tld-query': 'noTldQuery',
  no_tld_query: 'noTldQuery',
  // Known to glibc, no effect on what we measure.
  inet6: null,
  'no-reload': null,
  'trust-ad': null,
  'no-aaaa': null,
};

/** Parses resolv.conf text into a ResolverConfig. Never throws. */
export function parseResolvConf(text: string, options: ParseOptions = {}): ResolverConfig {
  const cfg: Mutable<ResolverConfig> = { ...DEFAULT_RESOLVER_CONFIG };
  const warnings: string[] = [];
  const nameservers: string[] = [];
  let search: string[] | undefined;
  const source = typeof text === 'string' ? text : '';

  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    const where = `line ${i + 1}`;
    if (line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([a-z]+)[ \t](.*)$/.exec(line);
    if (m === null) {
      if (line.trim() !== '' && /^[ \t]/.test(line))
        warnings.push(`${where}: leading whitespace, ignored (glibc needs the keyword first)`);
      else if (line.trim() !== '') warnings.push(`${where}: not understood, ignored`);
      continue;
    }
    const keyword = m[1] ?? '';
    const rest = m[2] ?? '';
    const words = rest.split(/[ \t]+/).filter((w) => w !== '');
    switch (keyword) {
      case 'nameserver': {
        const addr = parseNameserver(words[0] ?? '');
        if (addr === undefined) warnings.push(`${where}: bad nameserver address, ignored`);
        else nameservers.push(addr);
        break;
      }
      case 'domain':
        if (words[0] !== undefined) search = [stripDot(words[0])];
        break;
      case 'search':
        if (words.length > 0) {
          search = words.map(stripDot);
          if (words.some((w) => w.startsWith('#') || w.startsWith(';')))
            warnings.push(`${where}: a comment on a search line is read as search domains`);
        }
        break;
      case 'options':
        for (const word of words) setOption(cfg, word, where, warnings);
        break;
      case 'sortlist':
        break;
      default:
        warnings.push(`${where}: unknown keyword "${keyword}", ignored`);
    }
  }

  if (nameservers.length > MAX_NAMESERVERS) {
    warnings.push(
      `${nameservers.length} nameservers, only the first ${MAX_NAMESERVERS} are used: ignored ${nameservers.slice(MAX_NAMESERVERS).join(', ')}`,
    );
  }
  if (nameservers.length === 0) warnings.push('no nameserver (glibc would query 127.0.0.1)');
  cfg.nameservers = nameservers.slice(0, MAX_NAMESERVERS);

  if (search === undefined && options.hostname !== undefined) {
    const dot = options.hostname.indexOf('.');
    if (dot >= 0 && dot < options.hostname.length - 1)
      search = [stripDot(options.hostname.slice(dot + 1))];
  }
  cfg.search = (search ?? []).filter((d) => d !== '');
  if (cfg.search.length > LEGACY_MAX_SEARCH)
    warnings.push(
      `${cfg.search.length} search domains: glibc before 2.26 uses only the first ${LEGACY_MAX_SEARCH}`,
    );
  cfg.warnings = warnings;
  return cfg;
}

function setOption(
  cfg: Mutable<ResolverConfig>,
  word: string,
  where: string,
  warnings: string[],
): void {
  const numeric = /^(ndots|timeout|attempts):(.*)$/.exec(word);
  if (numeric !== null) {
    const key = numeric[1];
    const raw = numeric[2] ?? '';
    let n = atoi(raw);
    if (!/^[+-]?\d+$/.test(raw))
      warnings.push(`${where}: ${key}:${raw} is not a number, read as ${n} like atoi()`);
    if (n < 0) {
      warnings.push(`${where}: ${key}:${raw} is negative, using 0`);
      n = 0;
    }
    const max =
      key === 'ndots' ? MAX_NDOTS : key === 'timeout' ? MAX_TIMEOUT_SECONDS : MAX_ATTEMPTS;
    if (n > max) {
      warnings.push(`${where}: ${key}:${n} is above the maximum ${max}, using ${max}`);
      n = max;
    }
    if (key === 'ndots') cfg.ndots = n;
    else if (key === 'timeout') cfg.timeoutSeconds = n;
    else cfg.attempts = n;
    return;
  }
  if (Object.hasOwn(FLAG_OPTIONS, word)) {
    const field = FLAG_OPTIONS[word];
    if (field !== null && field !== undefined) (cfg as Record<string, unknown>)[field] = true;
    return;
  }
  warnings.push(`${where}: unknown option "${word}", ignored`);
}

/** C atoi(): optional sign and leading digits; anything else gives 0. */
function atoi(s: string): number {
  const m = /^[ \t]*([+-]?)(\d+)/.exec(s);
  if (m === null) return 0;
  const n = Number.parseInt(m[2] ?? '0', 10);
  const v = Math.min(n, 2 ** 31 - 1);
  return m[1] === '-' ? -v : v;
}

function parseNameserver(word: string): string | undefined {
  if (/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(word))
    return word;
  // IPv6, optionally with a %scope (kept off: it only matters for link-local servers).
  const bare = word.split('%')[0] ?? '';
  if (bare.includes(':') && isIPv6Literal(bare)) return bare;
  return undefined;
}

function isIPv6Literal(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return false;
  const double = s.split('::');
  if (double.length > 2) return false;
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const all = double.flatMap(groups);
  let count = 0;
  for (const [i, g] of all.entries()) {
    if (g.includes('.')) {
      // An embedded IPv4 tail counts as two groups and must come last.
      if (i !== all.length - 1 || parseNameserver(g) === undefined || g.includes(':')) return false;
      count += 2;
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      count += 1;
    }
  }
  return double.length === 2 ? count < 8 : count === 8;
}

function stripDot(domain: string): string {
  if (domain === '.') return '.';
  return domain.replace(/^\./, '').replace(/\.$/, '');
}

/** Longest name a query can carry, in presentation form without the trailing dot. */
const MAX_NAME = 253;

/**
 * The absolute names (each ending in '.') that a glibc resolver configured by `cfg` queries
 * for `name`, in order. Names too long to query are left out. Never throws.
 */
export function expandName(
  name: string,
  cfg: Pick<ResolverConfig, 'ndots' | 'search'> & Partial<Pick<ResolverConfig, 'noTldQuery'>>,
): string[] {
  if (typeof name !== 'string' || name === '' || name === '.') return name === '.' ? ['.'] : [];
  const out: string[] = [];
  const add = (n: string): void => {
    const abs = n.endsWith('.') ? n : `${n}.`;
    const bare = abs.slice(0, -1);
    if (bare.length === 0 || bare.length > MAX_NAME || bare.includes('..')) return;
    if (!out.some((o) => o.toLowerCase() === abs.toLowerCase())) out.push(abs);
  };
  let dots = 0;
  for (const ch of name) if (ch === '.') dots++;
  const trailingDot = name.endsWith('.');
  if (trailingDot) {
    add(name);
    return out;
  }
  let triedAsIs = false;
  if (dots >= cfg.ndots) {
    add(name);
    triedAsIs = true;
  }
  let rootOnList = false;
  for (const domain of cfg.search) {
    const d = domain.replace(/^\./, '').replace(/\.$/, '');
    if (d === '') {
      rootOnList = true;
      add(name);
    } else {
      add(`${name}.${d}`);
    }
  }
  const searched = cfg.search.length > 0;
  if ((dots > 0 || !searched || cfg.noTldQuery !== true) && !(triedAsIs || rootOnList)) add(name);
  return out;
}

/**
 * Whether glibc goes on to the next name of the expansion after this outcome of the current
 * one: yes after NXDOMAIN, NODATA and SERVFAIL; no after an answer with records or any other
 * failure.
 */
export function searchContinues(outcome: string): boolean {
  return outcome === 'nxdomain' || outcome === 'nodata' || outcome === 'servfail';
}
