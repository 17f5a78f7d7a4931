// Node entry (ESM; bundled into node.cjs for require). The .wasm is read from disk synchronously at
// import time, so `createClient` never waits on a fetch and a script's first call is as fast as its last.
import * as fs from 'node:fs';
import * as glue from './glue.js';
import { bindApi } from './api.js';
import { ReplikitError } from './errors.js';

export { ReplikitError };

function loadSync(input) {
  const module = input ?? fs.readFileSync(new URL('./replikit.wasm', import.meta.url));
  glue.initSync({ module });
  // The `file` store (queued writes that survive the process) uses Node's fs, handed to the module here.
  glue.__setNodeFs(fs);
}

const api = bindApi(glue, loadSync);
loadSync();
glue.__setErrorClass(ReplikitError);

/** Already done at import in Node; kept so the same code runs in browsers and Node. */
export const init = api.init;
export const createClient = api.createClient;
export const version = api.version;
