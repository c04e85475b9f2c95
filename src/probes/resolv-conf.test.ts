// Tests for resolv.conf parsing and glibc-style name expansion, as tables. Every input is a
// fixture string: the machine's own /etc/resolv.conf is never read.

import test from 'ava';
import fc from 'fast-check';
import {
  DEFAULT_RESOLVER_CONFIG,
  expandName,
  parseResolvConf,
  searchContinues,
  type ResolverConfig,
} from './resolv-conf.ts';

const K8S_POD = `search default.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
`;

test('a Kubernetes Pod resolv.conf', (t) => {
  const cfg = parseResolvConf(K8S_POD);
  t.deepEqual(cfg.nameservers, ['10.96.0.10']);
  t.deepEqual(cfg.search, ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
  t.is(cfg.ndots, 5);
  t.is(cfg.timeoutSeconds, 5);
  t.is(cfg.attempts, 2);
  t.deepEqual(cfg.warnings, []);
});

test('empty input gives the defaults and a warning about no nameserver', (t) => {
  const cfg = parseResolvConf('');
  t.is(cfg.ndots, 1);
  t.is(cfg.timeoutSeconds, 5);
  t.is(cfg.attempts, 2);
  t.deepEqual(cfg.search, []);
  t.deepEqual(cfg.nameservers, []);
  t.is(cfg.warnings.length, 1);
  t.regex(cfg.warnings[0] ?? '', /no nameserver/);
});

interface ParseCase {
  readonly title: string;
  readonly text: string;
  readonly expect: Partial<Omit<ResolverConfig, 'warnings'>>;
  /** Regexes every one of which must match some warning; [] means no warnings at all. */
  readonly warnings: readonly RegExp[];
}

const NS = 'nameserver 10.0.0.10\n';

const PARSE_CASES: readonly ParseCase[] = [
  {
    title: 'more than 3 nameservers: the first 3 are used',
    text: 'nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n',
    expect: { nameservers: ['10.0.0.1', '10.0.0.2', '10.0.0.3'] },
    warnings: [/4 nameservers.*10\.0\.0\.4/],
  },
  {
    title: 'IPv6 nameserver, scope id dropped',
    text: 'nameserver fd00::a\nnameserver fe80::1%eth0\n',
    expect: { nameservers: ['fd00::a', 'fe80::1'] },
    warnings: [],
  },
  {
    title: 'bad nameserver ignored',
    text: 'nameserver 10.0.0.300\nnameserver dns.example\n' + NS,
    expect: { nameservers: ['10.0.0.10'] },
    warnings: [/line 1: bad nameserver/, /line 2: bad nameserver/],
  },
  {
    title: 'comment after a nameserver address is ignored',
    text: 'nameserver 10.0.0.10 # the VIP\n',
    expect: { nameservers: ['10.0.0.10'] },
    warnings: [],
  },
  {
    title: 'comment lines with # and ;',
    text: '# search wrong.example\n; nameserver 10.9.9.9\n' + NS + 'search a.example\n',
    expect: { nameservers: ['10.0.0.10'], search: ['a.example'] },
    warnings: [],
  },
  {
    title: 'the last search line wins',
    text: NS + 'search first.example\nsearch second.example third.example\n',
    expect: { search: ['second.example', 'third.example'] },
    warnings: [],
  },
  {
    title: 'domain after search replaces it, keeping one word',
    text: NS + 'search a.example b.example\ndomain corp.example extra\n',
    expect: { search: ['corp.example'] },
    warnings: [],
  },
  {
    title: 'search after domain replaces it',
    text: NS + 'domain corp.example\nsearch a.example\n',
    expect: { search: ['a.example'] },
    warnings: [],
  },
  {
    title: 'odd whitespace: tabs, runs of spaces, CRLF, trailing dots',
    text: 'nameserver\t10.0.0.10\r\nsearch \t a.example.   b.example\t\r\noptions   ndots:3\ttimeout:2  \r\n',
    expect: {
      nameservers: ['10.0.0.10'],
      search: ['a.example', 'b.example'],
      ndots: 3,
      timeoutSeconds: 2,
    },
    warnings: [],
  },
  {
    title: 'a keyword with leading whitespace is ignored, like glibc',
    text: NS + '  search a.example\n',
    expect: { search: [] },
    warnings: [/line 2: leading whitespace/],
  },
  {
    title: 'a trailing comment on a search line becomes domains, like glibc',
    text: NS + 'search a.example # note\n',
    expect: { search: ['a.example', '#', 'note'] },
    warnings: [/comment on a search line/],
  },
  {
    title: 'options are clamped like glibc',
    text: NS + 'options ndots:20 timeout:99 attempts:9\n',
    expect: { ndots: 15, timeoutSeconds: 30, attempts: 5 },
    warnings: [/ndots:20.*15/, /timeout:99.*30/, /attempts:9.*5/],
  },
  {
    title: 'several options lines add up; flags are read',
    text:
      NS +
      'options ndots:2 rotate\noptions attempts:3 use-vc edns0 single-request-reopen no-tld-query\n',
    expect: {
      ndots: 2,
      attempts: 3,
      rotate: true,
      useTcp: true,
      edns0: true,
      singleRequestReopen: true,
      singleRequest: false,
      noTldQuery: true,
    },
    warnings: [],
  },
  {
    title: 'non-numeric option values read like atoi()',
    text: NS + 'options ndots:x timeout:3s\n',
    expect: { ndots: 0, timeoutSeconds: 3 },
    warnings: [/ndots:x.*0/, /timeout:3s.*3/],
  },
  {
    title: 'negative option values become 0',
    text: NS + 'options ndots:-2\n',
    expect: { ndots: 0 },
    warnings: [/negative/],
  },
  {
    title: 'unknown options and keywords are ignored with a warning',
    text: NS + 'options frobnicate ndots:2\nlookup file bind\n',
    expect: { ndots: 2 },
    warnings: [/unknown option "frobnicate"/, /unknown keyword "lookup"/],
  },
  {
    title: 'more than 6 search domains: kept, with a warning',
    text: NS + 'search a b c d e f g\n',
    expect: { search: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] },
    warnings: [/7 search domains/],
  },
];

for (const c of PARSE_CASES) {
  test(`parse: ${c.title}`, (t) => {
    const cfg = parseResolvConf(c.text);
    for (const [key, value] of Object.entries(c.expect))
      t.deepEqual(cfg[key as keyof ResolverConfig], value, key);
    if (c.warnings.length === 0) t.deepEqual(cfg.warnings, []);
    for (const w of c.warnings)
      t.true(
        cfg.warnings.some((x) => w.test(x)),
        `no warning matches ${String(w)} in ${JSON.stringify(cfg.warnings)}`,
      );
  });
}

test('parse: without search or domain the host name supplies the domain, like glibc', (t) => {
  t.deepEqual(parseResolvConf(NS, { hostname: 'node1.corp.example' }).search, ['corp.example']);
  t.deepEqual(parseResolvConf(NS, { hostname: 'node1' }).search, []);
  t.deepEqual(
    parseResolvConf(NS + 'search a.example\n', { hostname: 'node1.corp.example' }).search,
    ['a.example'],
  );
});

interface ExpandCase {
  readonly name: string;
  readonly ndots: number;
  readonly search: readonly string[];
  readonly noTldQuery?: boolean;
  readonly expect: readonly string[];
}

const K8S_SEARCH = ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'];

const EXPAND_CASES: readonly ExpandCase[] = [
  // Kubernetes Pod, ndots 5: every name with fewer than 5 dots goes through the search list first.
  {
    name: 'kubernetes.default',
    ndots: 5,
    search: K8S_SEARCH,
    expect: [
      'kubernetes.default.default.svc.cluster.local.',
      'kubernetes.default.svc.cluster.local.',
      'kubernetes.default.cluster.local.',
      'kubernetes.default.',
    ],
  },
  {
    name: 'kubernetes',
    ndots: 5,
    search: K8S_SEARCH,
    expect: [
      'kubernetes.default.svc.cluster.local.',
      'kubernetes.svc.cluster.local.',
      'kubernetes.cluster.local.',
      'kubernetes.',
    ],
  },
  {
    name: 'kubernetes.default.svc.cluster.local',
    ndots: 5,
    search: K8S_SEARCH,
    expect: [
      'kubernetes.default.svc.cluster.local.default.svc.cluster.local.',
      'kubernetes.default.svc.cluster.local.svc.cluster.local.',
      'kubernetes.default.svc.cluster.local.cluster.local.',
      'kubernetes.default.svc.cluster.local.',
    ],
  },
  {
    name: 'kubernetes.default.svc.cluster.local.',
    ndots: 5,
    search: K8S_SEARCH,
    expect: ['kubernetes.default.svc.cluster.local.'],
  },
  {
    name: 'a.b.c.d.e.example.com',
    ndots: 5,
    search: K8S_SEARCH,
    expect: [
      'a.b.c.d.e.example.com.',
      'a.b.c.d.e.example.com.default.svc.cluster.local.',
      'a.b.c.d.e.example.com.svc.cluster.local.',
      'a.b.c.d.e.example.com.cluster.local.',
    ],
  },
  // ndots 1 (the default): one dot is enough to try the name as-is first.
  {
    name: 'www.example.com',
    ndots: 1,
    search: ['corp.example'],
    expect: ['www.example.com.', 'www.example.com.corp.example.'],
  },
  {
    name: 'db',
    ndots: 1,
    search: ['corp.example', 'example'],
    expect: ['db.corp.example.', 'db.example.', 'db.'],
  },
  { name: 'db.', ndots: 1, search: ['corp.example'], expect: ['db.'] },
  { name: 'db', ndots: 1, search: [], expect: ['db.'] },
  { name: 'db', ndots: 0, search: ['corp.example'], expect: ['db.', 'db.corp.example.'] },
  // no-tld-query: a dotless name is never sent as-is once a search list was tried.
  {
    name: 'db',
    ndots: 1,
    search: ['corp.example'],
    noTldQuery: true,
    expect: ['db.corp.example.'],
  },
  {
    name: 'db.x',
    ndots: 2,
    search: ['corp.example'],
    noTldQuery: true,
    expect: ['db.x.corp.example.', 'db.x.'],
  },
  // A root search domain stands for the name as-is, in its place, and is not tried twice.
  { name: 'db', ndots: 1, search: ['.', 'corp.example'], expect: ['db.', 'db.corp.example.'] },
  // Names that would be too long with a search domain are skipped.
  {
    name: 'x'.repeat(63) + '.' + 'y'.repeat(63) + '.' + 'z'.repeat(63),
    ndots: 5,
    search: ['s'.repeat(63) + '.example'],
    expect: ['x'.repeat(63) + '.' + 'y'.repeat(63) + '.' + 'z'.repeat(63) + '.'],
  },
  { name: '', ndots: 1, search: ['corp.example'], expect: [] },
];

for (const c of EXPAND_CASES) {
  const label = `expand: ${c.name.length > 40 ? c.name.slice(0, 20) + '…' : c.name || '(empty)'} ndots:${c.ndots} search:[${c.search.join(' ')}]${c.noTldQuery === true ? ' no-tld-query' : ''}`;
  test(label, (t) => {
    t.deepEqual(
      expandName(c.name, { ndots: c.ndots, search: c.search, noTldQuery: c.noTldQuery === true }),
      [...c.expect],
    );
  });
}

test('expand: from a parsed Kubernetes resolv.conf', (t) => {
  const cfg = parseResolvConf(K8S_POD);
  const names = expandName('kubernetes.default', cfg);
  t.is(names.length, 4);
  t.is(names[1], 'kubernetes.default.svc.cluster.local.');
});

test('searchContinues follows glibc: on NXDOMAIN, NODATA, SERVFAIL only', (t) => {
  t.true(searchContinues('nxdomain'));
  t.true(searchContinues('nodata'));
  t.true(searchContinues('servfail'));
  t.false(searchContinues('noerror'));
  t.false(searchContinues('timeout'));
  t.false(searchContinues('refused'));
});

test('property: parsing never throws and always gives sane values', (t) => {
  const line = fc.oneof(
    fc.string(),
    fc
      .constantFrom('nameserver', 'search', 'domain', 'options', '#', ';')
      .chain((k) => fc.string().map((rest) => `${k} ${rest}`)),
    fc
      .tuple(fc.constantFrom('ndots', 'timeout', 'attempts'), fc.string())
      .map(([k, v]) => `options ${k}:${v}`),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
      const cfg = parseResolvConf(lines.join('\n'));
      return (
        cfg.nameservers.length <= 3 &&
        cfg.ndots >= 0 &&
        cfg.ndots <= 15 &&
        cfg.timeoutSeconds >= 0 &&
        cfg.timeoutSeconds <= 30 &&
        cfg.attempts >= 0 &&
        cfg.attempts <= 5 &&
        Array.isArray(cfg.warnings)
      );
    }),
  );
  t.pass();
});

test('property: every expansion is absolute, unique, and contains the name as-is', (t) => {
  const label = fc.stringMatching(/^[a-z0-9-]{1,10}$/);
  const name = fc.array(label, { minLength: 1, maxLength: 6 }).map((l) => l.join('.'));
  const search = fc.array(
    fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.')),
    { maxLength: 6 },
  );
  fc.assert(
    fc.property(name, search, fc.integer({ min: 0, max: 15 }), (n, s, ndots) => {
      const out = expandName(n, { ndots, search: s });
      const lower = out.map((o) => o.toLowerCase());
      return (
        out.every((o) => o.endsWith('.')) &&
        new Set(lower).size === out.length &&
        out.includes(`${n}.`) &&
        // The as-is name comes first exactly when it has at least ndots dots.
        (out[0] === `${n}.`) === (n.split('.').length - 1 >= ndots || s.length === 0)
      );
    }),
  );
  t.pass();
});

test('defaults are exported for callers without a resolv.conf', (t) => {
  t.is(DEFAULT_RESOLVER_CONFIG.ndots, 1);
  t.is(DEFAULT_RESOLVER_CONFIG.attempts, 2);
});
