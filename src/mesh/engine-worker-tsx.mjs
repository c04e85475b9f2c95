// Worker bootstrap used only when podmesh runs from TypeScript source (npm start, tests):
// Node 20 doesn't carry tsx's loader into worker threads, so register it here, then load the
// real worker. Compiled builds start dist/src/mesh/engine-worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./engine-worker.ts');
