// The public API shared by every entry point. It only loads the module once, registers the error class,
// and forwards to the wasm exports: every decision is made in Rust.
import { ReplikitError } from './errors.js';

export { ReplikitError };

/**
 * @param {typeof import('./glue.js')} glue the wasm-bindgen module
 * @param {(input?: unknown) => unknown} load instantiates the .wasm (sync in Node, a fetch in browsers)
 */
export function bindApi(glue, load) {
  let ready = null;

  function init(input) {
    if (!ready) {
      ready = Promise.resolve()
        .then(() => load(input))
        .then(() => {
          glue.__setErrorClass(ReplikitError);
        });
      // A failed load (offline, wrong URL) may be retried by calling init() again.
      ready.catch(() => {
        ready = null;
      });
    }
    return ready;
  }

  async function createClient(options) {
    await init();
    return glue.createClient(options);
  }

  function version() {
    return glue.version();
  }

  return { init, createClient, version };
}
