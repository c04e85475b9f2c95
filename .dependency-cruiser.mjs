// podmesh's layering, checked by dependency-cruiser in `npm run lint` (docs/architecture.md has the
// same table). Each layer names the layers it may import; everything else in src/ is forbidden to
// it, so adding a layer to a `may` list is a visible design decision, not an accident. Type-only
// imports count: importing another layer's types is what ties a layer to its shapes, and a cycle
// of types is as hard to untangle as a cycle of code. Tests (*.test.ts) are outside the layer
// rules (a test may import whatever it exercises), but the cycle rule covers them and production
// code never imports them or test/. Paths are relative to the base directory, so the same rules
// run on test/fixtures/layers in test/layers.test.ts.

/** @typedef {{ name: string, path: string, may: string[], why: string }} Layer */

/** @type {Layer[]} */
const LAYERS = [
  {
    name: 'core',
    // version.ts reads package.json and imports nothing in src: a core fact at the top level.
    path: '^src/(core/|version\\.ts$)',
    may: [],
    why: 'shared vocabulary (types, clock, netif); the bottom of the stack',
  },
  { name: 'config', path: '^src/config/', may: ['core'], why: 'settings schema and loading' },
  { name: 'native', path: '^src/native/', may: [], why: 'the kernel timestamping addon' },
  {
    name: 'api',
    path: '^src/api/',
    may: ['core'],
    why: 'the wire contract: zod schemas, types by z.infer',
  },
  { name: 'probes', path: '^src/probes/', may: ['core', 'native'], why: 'one probe on a socket' },
  {
    name: 'responders',
    path: '^src/responders/',
    may: ['core', 'native', 'probes'],
    why: 'the answering side of probes (codec, sockets)',
  },
  { name: 'discovery', path: '^src/discovery/', may: ['core', 'config'], why: 'who the peers are' },
  {
    name: 'store',
    path: '^src/store/',
    may: ['core', 'probes'],
    why: 'sliding windows of results (probes for their result types)',
  },
  {
    name: 'metrics',
    path: '^src/metrics/',
    may: ['core', 'store', 'probes', 'config', 'api', 'native'],
    why: 'Prometheus catalogue and recorder, read from the windows (native: timestamp sources)',
  },
  {
    name: 'mesh',
    path: '^src/mesh/',
    may: ['core', 'probes', 'responders', 'store', 'native', 'config'],
    why: 'engine, scheduler, selection, plans',
  },
  {
    name: 'agent',
    path: '^src/agent/',
    may: [
      'core',
      'config',
      'native',
      'api',
      'probes',
      'responders',
      'discovery',
      'store',
      'metrics',
      'mesh',
      'server',
    ],
    why: 'wires one node: everything below, never controller, analysis or demo',
  },
  {
    name: 'server',
    path: '^src/server/',
    may: [],
    why: 'HTTP leaf: express and its own files; callers pass it a small view',
  },
  { name: 'analysis', path: '^src/analysis/', may: ['api', 'core'], why: 'triage rules' },
  {
    name: 'controller',
    path: '^src/controller/',
    may: ['api', 'analysis', 'core', 'config', 'discovery', 'server', 'metrics'],
    why: 'pulls agent rows into the matrix and runs triage (metrics: the catalogue of its own /metrics)',
  },
  {
    name: 'ui',
    path: '^src/ui/',
    may: ['api'],
    why: 'browser JavaScript served as is; api for its JSDoc types only',
  },
];

// The top: the demo and the entry points may import anything in src (still no tests, no cycles).
const TOP = '^src/(demo/|(main|bundle|diagnose|gen-[^/]+)\\.ts$)';

const TEST_FILE = '\\.test\\.ts$';
// How dependency-cruiser marks an import that is erased at runtime (TypeScript `import type` and
// JSDoc `import('...')` types in the browser JavaScript).
const TYPE_ONLY = ['type-only', 'type-import', 'jsdoc', 'jsdoc-bracket-import', 'jsdoc-import-tag'];

const pathOf = Object.fromEntries(LAYERS.map((l) => [l.name, l.path]));

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    ...LAYERS.map((layer) => ({
      name: `layer-${layer.name}`,
      severity: 'error',
      comment:
        `${layer.name} (${layer.why}) may import ` +
        (layer.may.length ? layer.may.join(', ') : 'nothing else in src') +
        '; see docs/architecture.md',
      from: { path: layer.path, pathNot: TEST_FILE },
      to: { path: '^src/', pathNot: [layer.path, ...layer.may.map((m) => pathOf[m])] },
    })),
    {
      name: 'not-in-a-layer',
      severity: 'error',
      comment: 'every file in src belongs to a layer (docs/architecture.md); place this one',
      from: {
        path: '^src/',
        pathNot: [TEST_FILE, TOP, ...LAYERS.map((l) => l.path)],
      },
      to: { path: '^src/' },
    },
    {
      name: 'ui-api-types-only',
      severity: 'error',
      comment: 'the web UI runs in the browser unbuilt: it may use the api for JSDoc types only',
      from: { path: pathOf.ui },
      to: { path: pathOf.api, dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'server-only-express',
      severity: 'error',
      comment:
        'the HTTP server is a leaf: node built-ins, express (and bcryptjs, for basic auth) and its own files',
      from: { path: pathOf.server, pathNot: TEST_FILE },
      to: {
        dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg'],
        pathNot: 'node_modules/((@types/)?express|bcryptjs)/',
      },
    },
    {
      name: 'store-metrics-probe-types',
      // A warning, not an error: the layer table says store and metrics use probes for its types;
      // a value import (a closed list of outcomes, say) belongs in core or api instead.
      severity: 'warn',
      comment: 'store and metrics use probes for its result types only',
      from: { path: [pathOf.store, pathOf.metrics], pathNot: TEST_FILE },
      to: { path: pathOf.probes, dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'no-test-in-production',
      severity: 'error',
      comment:
        'production code never imports test/ (tests and their support stay out of the build)',
      from: { path: '^src/', pathNot: TEST_FILE },
      to: { path: ['^test/', TEST_FILE] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import cycles anywhere, type-only ones included',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/native/build/' },
    // Keep `import type` edges (they are erased by the compiler otherwise) and read the JSDoc
    // types of src/ui/app.js.
    tsPreCompilationDeps: true,
    detectJSDocImports: true,
  },
};
