// Preload for pouchdb-server (`node --require ./replication-guard.cjs <pouchdb-server bin> ...`): keeps a
// replication whose peer dies from crashing the whole server, and makes it retry quickly.
//
// The bug (pouchdb-server 4.2.0, pouchdb-replication 7.x): `POST /_replicate` calls PouchDB.replicate without
// `retry` (express-pouchdb drops it from the body), so it defaults to false. When the peer goes away,
// pouchdb-replication's backOff() does `returnValue.emit('error', err)` then `removeAllListeners()`; the next
// failure of the same replication emits 'error' with no listener left, which Node turns into an uncaught
// exception: "Emitted 'error' event at: Replication.emit ... backOff (pouchdb-replication/lib/index.js:200)",
// and the replicating server exits.
//
// The guard wraps the pouchdb-replication plugin in require.cache before pouchdb-server loads it. After the
// original plugin has set PouchDB.replicate, every replication is started with `retry: true` and a back-off
// capped at 1000 ms (so a peer that comes back is caught up within about a second), and gets an 'error'
// listener that logs (plus an emit() that logs instead of throwing if 'error' ever has no listener left).
'use strict';

const path = require('node:path');

const MAX_BACK_OFF_MS = 1000;

function log(message) {
  process.stderr.write(`[${new Date().toISOString()}] [replication-guard] ${message}\n`);
}

/** pouchdb-server's directory, so pouchdb-replication resolves to the copy pouchdb-server itself requires. */
function pouchdbServerDir() {
  const from = [process.argv[1] ? path.dirname(process.argv[1]) : process.cwd(), __dirname];
  return path.dirname(require.resolve('pouchdb-server/package.json', { paths: from }));
}

/** The default back-off starts at 0-2 s and doubles without bound; this one goes 250, 500, 1000, 1000... ms. */
function cappedBackOff(previousMs) {
  return Math.min(MAX_BACK_OFF_MS, previousMs > 0 ? previousMs * 2 : 250);
}

/** A database's name for the log: a URL without the credentials it carries (the dev cluster's server admin). */
function describe(db) {
  const name = typeof db === 'string' ? db : (db && (db.name || db._db_name)) || String(db);
  try {
    const url = new URL(name);
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return name;
  }
}

/** Logs a replication's errors and its pauses/resumptions (once per change, not once per retry). */
function guard(replication, source, target, continuous) {
  const name = `${describe(source)} -> ${describe(target)}`;
  let down = false;
  replication.on('error', (err) => log(`${name}: error (not retried): ${err && (err.message || err.name || err)}`));
  replication.on('paused', (err) => {
    if (err && !down) {
      down = true;
      log(`${name}: paused on ${err.message || err.name || err}; retrying every <= ${MAX_BACK_OFF_MS} ms`);
    }
  });
  replication.on('active', () => {
    if (down) {
      down = false;
      log(`${name}: active again`);
    }
  });
  // pouchdb-replication calls removeAllListeners() on some paths before emitting 'error' again; never let
  // that become an uncaught exception.
  const emit = replication.emit;
  replication.emit = function guardedEmit(event, ...args) {
    if (event === 'error' && this.listenerCount('error') === 0) {
      const err = args[0];
      log(`${name}: error with no listener (swallowed): ${err && (err.message || err.name || err)}`);
      return false;
    }
    return emit.call(this, event, ...args);
  };
  log(`${name}: started${continuous ? ' (continuous)' : ''}`);
}

function install() {
  const resolved = require.resolve('pouchdb-replication', { paths: [pouchdbServerDir()] });
  const original = require(resolved);
  if (typeof original !== 'function' || original.__replikitGuarded) return;

  function guardedPlugin(PouchDB) {
    original(PouchDB);
    const replicate = PouchDB.replicate;
    PouchDB.replicate = function guardedReplicate(source, target, opts, callback) {
      if (typeof opts === 'function') {
        callback = opts;
        opts = {};
      }
      const forced = Object.assign({}, opts, { retry: true, back_off_function: cappedBackOff });
      const replication = replicate.call(this, source, target, forced, callback);
      guard(replication, source, target, !!(forced.continuous || forced.live));
      return replication;
    };
  }
  guardedPlugin.__replikitGuarded = true;
  require.cache[resolved].exports = guardedPlugin;
}

try {
  install();
} catch (e) {
  // Without the guard the server still works; it just crashes when a replication peer dies.
  log(`could not install: ${e && e.stack ? e.stack : e}`);
}
