// Browser and bundler entry (ESM). No top-level await: some Vite production builds deadlock on it.
// The .wasm is fetched on first use (or by an early `init()`) from next to this file, a URL bundlers rewrite.
import * as glue from './glue.js';
import { bindApi } from './api.js';

export { ReplikitError } from './errors.js';

const api = bindApi(glue, (input) =>
  glue.default({ module_or_path: input ?? new URL('./replikit.wasm', import.meta.url) }),
);

/** Loads the WebAssembly module; `createClient` calls it for you. Pass a URL, Response or Module to override. */
export const init = api.init;
export const createClient = api.createClient;
export const version = api.version;
