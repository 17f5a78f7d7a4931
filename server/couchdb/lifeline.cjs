// Preload for the dev cluster's pouchdb-server children (`node --require ./lifeline.cjs ...`): the supervisor
// gives each child a stdin pipe and never writes to it; when the supervisor goes away, even by SIGKILL, the pipe
// reaches end-of-file and the child exits, so no pouchdb-server outlives its cluster. Only active when
// REPLIKIT_COUCH_LIFELINE=1 (so running pouchdb-server by hand with this preload changes nothing).
'use strict';

if (process.env.REPLIKIT_COUCH_LIFELINE === '1') {
  const exit = () => process.exit(0);
  process.stdin.on('end', exit);
  process.stdin.on('close', exit);
  process.stdin.on('error', exit);
  process.stdin.resume();
}
