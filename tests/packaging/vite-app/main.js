// A tiny app that uses the installed package exactly as a web frontend would.
import { createClient, init, ReplikitError, version } from 'replikit';

const out = document.getElementById('result');
try {
  await init();
  const db = await createClient({ primary: 'http://127.0.0.1:7100', replicas: ['http://127.0.0.1:7101'] });
  let bad = null;
  try {
    await createClient({ primary: 'nope' });
  } catch (e) {
    bad = { isReplikitError: e instanceof ReplikitError, code: e.code, argument: e.argument };
  }
  out.textContent = JSON.stringify({
    version: version(),
    roles: db.topology().map((e) => e.role),
    collection: db.collection('notes').name,
    bad,
  });
  await db.close();
} catch (e) {
  out.textContent = `error: ${e && e.stack ? e.stack : e}`;
}
