// `npm run build`: bundles podmesh into dist/bundle/ with esbuild, the way the image ships it.
//
//   dist/bundle/main.js            the CLI (podmesh agent | controller | demo | diagnose)
//   dist/bundle/engine-worker.js   the probe engine's worker thread
//   dist/bundle/chunk-*.js         code shared by both, and each command's own code, loaded
//                                  only by the command that runs it
//   dist/bundle/podmesh_timestamping.node   the addon, where timestamping.ts looks for it
//   dist/ui/                       the web UI, where controller-app.ts looks for it
//
// Why a bundle: an agent runs on every node, and Node keeps the source text of every module it
// loads, plus per-module loader state. One minified file per command instead of ~500 modules
// is ~5 MB less RSS per agent at 1,000 probes/s (`npm run bench -- --only=load`, which runs
// this same bundle; docs/benchmarks.md). Types are checked by `npm run typecheck`, not here.
//
// Left outside the bundle, loaded from node_modules at run time:
//   raw-socket                native addon (the ICMP fallback)
//   @kubernetes/client-node   only with Kubernetes discovery, imported on demand; bundled it
//                             would be ~15 MB of source in the file every agent loads
//   iconv-lite                (via express's body parser) loads its encoding tables lazily;
//                             bundled, all of them would be parsed at start-up
//
// A source map (dist/bundle/*.js.map) is written next to the code: with
// NODE_OPTIONS=--enable-source-maps a stack trace names the TypeScript source. Off by default,
// as reading every map costs memory.

import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';

export const BUNDLE_EXTERNALS = ['*.node', 'raw-socket', '@kubernetes/client-node', 'iconv-lite'];

/**
 * zod re-exports its error messages in ~45 languages (`z.locales`), a fifth of the bundle
 * (264 KiB). podmesh uses only the English ones zod installs by default (classic/schemas.js
 * imports locales/en.js itself), so the namespace is cut down to `en`.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      contents: 'export { default as en } from "./en.js";',
      loader: 'js',
    }));
  },
};

/** esbuild options for a podmesh bundle of `entryPoints` (output name -> source file). */
export function bundleOptions(entryPoints: Record<string, string>, outdir: string): BuildOptions {
  return {
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: true,
    sourcemap: 'linked',
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    external: BUNDLE_EXTERNALS,
    // CommonJS dependencies call require() for Node's own modules; an ES module has none.
    banner: {
      js: "import { createRequire as __podmeshRequire } from 'node:module'; const require = __podmeshRequire(import.meta.url);",
    },
    plugins: [zodEnglishOnly],
    logLevel: 'warning',
    metafile: true,
  };
}

/** Bundles `entryPoints` into `outdir` and puts the timestamping addon beside them, if built. */
export async function bundle(
  root: string,
  entryPoints: Record<string, string>,
  outdir: string,
): Promise<{ bytes: number; files: number; addon: boolean }> {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  const r = await build(bundleOptions(entryPoints, outdir));
  const outputs = Object.entries(r.metafile?.outputs ?? {}).filter(([f]) => f.endsWith('.js'));
  const addon = join(root, 'src/native/build/Release/podmesh_timestamping.node');
  const hasAddon = existsSync(addon);
  if (hasAddon) cpSync(addon, join(outdir, 'podmesh_timestamping.node'));
  return {
    bytes: outputs.reduce((n, [, o]) => n + o.bytes, 0),
    files: outputs.length,
    addon: hasAddon,
  };
}

/** The podmesh CLI and its engine worker, as the image runs them. */
export const PODMESH_ENTRIES = {
  main: 'src/main.ts',
  'engine-worker': 'src/mesh/engine-worker.ts',
} as const;

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = fileURLToPath(new URL('../', import.meta.url));
  const outdir = join(root, 'dist/bundle');
  const entries = Object.fromEntries(
    Object.entries(PODMESH_ENTRIES).map(([name, src]) => [name, join(root, src)]),
  );
  const r = await bundle(root, entries, outdir);
  cpSync(join(root, 'src/ui'), join(root, 'dist/ui'), { recursive: true });
  process.stderr.write(
    `podmesh: bundled ${r.files} files, ${(r.bytes / 1024).toFixed(0)} KiB, into ${relative(root, outdir)}/ ` +
      `(${r.addon ? 'with' : 'without'} the timestamping addon); web UI in dist/ui/\n`,
  );
}
