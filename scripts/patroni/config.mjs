// What each process of the Patroni cluster is told: etcd's flags, each Patroni node's configuration, the gateway
// role's SQL, the gateway's conninfo. Pure functions of ports, names and secrets; cluster.mjs runs the processes.
//
// Why these values:
// - ttl 20 s is Patroni's minimum leader TTL and bounds the failover gap (the leader key must expire before a
//   standby may take it); loop_wait 2 s and retry_timeout 5 s keep loop_wait + 2 * retry_timeout <= ttl, the rule
//   Patroni's docs give so a leader that cannot reach etcd demotes itself before its key expires.
// - synchronous_mode 'on' (Patroni's `true`): one synchronous standby named in synchronous_standby_names, and only
//   that standby may be promoted; 'quorum' (Patroni 4): `ANY k (...)` over the standbys, and a promotion needs a
//   quorum of them; 'off': asynchronous. `strict` (synchronous_mode_strict) makes the primary block commits while no
//   synchronous standby is connected instead of falling back to asynchronous (docs/OPERATIONS.md).
// - pg_rewind (wal_log_hints) lets a lost leader that comes back rejoin as a standby of the new timeline.
// - every listener is on 127.0.0.1 and every password is checked with SCRAM-SHA-256.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** Leader TTL, HA loop period and DCS retry timeout, in seconds (Patroni's `bootstrap.dcs`). */
export const TIMING = { ttl: 20, loop_wait: 2, retry_timeout: 5 };

/** A random password: URL-safe base64 of 24 bytes (ASCII, so SCRAM's SASLprep leaves it as it is). */
export const secret = () => randomBytes(24).toString('base64url');

/** The flags of etcd member `i` of `members` (each `{ name, client, peer }`), data in `dataDir`. */
export function etcdArgs(members, i, dataDir, token) {
  const me = members[i];
  return [
    '--name', me.name,
    '--data-dir', dataDir,
    '--listen-client-urls', `http://127.0.0.1:${me.client}`,
    '--advertise-client-urls', `http://127.0.0.1:${me.client}`,
    '--listen-peer-urls', `http://127.0.0.1:${me.peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${me.peer}`,
    '--initial-cluster', members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(','),
    '--initial-cluster-token', token,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
  ];
}

/** Patroni's `synchronous_mode` value for our mode name. */
function synchronousMode(sync) {
  if (sync === 'quorum') return 'quorum';
  if (sync === 'on') return true;
  if (sync === 'off') return false;
  throw new Error(`sync must be on, quorum or off, not ${JSON.stringify(sync)}`);
}

/**
 * Patroni's configuration for one node (written as JSON, which Patroni's YAML parser reads). It holds the
 * superuser, replication and rewind passwords: the file is written 0600 for the postgres user.
 */
export function patroniConfig({ name, dir, bin, scope, namespace, etcdHosts, pgPort, apiPort, sync, strict, passwords }) {
  return {
    scope,
    namespace,
    name,
    restapi: { listen: `127.0.0.1:${apiPort}`, connect_address: `127.0.0.1:${apiPort}` },
    etcd3: { hosts: etcdHosts },
    bootstrap: {
      dcs: {
        ...TIMING,
        maximum_lag_on_failover: 1048576,
        synchronous_mode: synchronousMode(sync),
        synchronous_mode_strict: Boolean(strict),
        synchronous_node_count: 1,
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            wal_level: 'replica',
            hot_standby: 'on',
            wal_log_hints: 'on',
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_keep_size: '128MB',
            max_connections: 60,
            shared_buffers: '32MB',
            wal_receiver_status_interval: '1s',
            wal_retrieve_retry_interval: '500ms',
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums'],
    },
    postgresql: {
      listen: `127.0.0.1:${pgPort}`,
      connect_address: `127.0.0.1:${pgPort}`,
      data_dir: join(dir, 'data'),
      bin_dir: bin,
      pgpass: join(dir, 'pgpass'),
      authentication: {
        superuser: { username: 'postgres', password: passwords.superuser },
        replication: { username: 'replicator', password: passwords.replication },
        rewind: { username: 'rewinder', password: passwords.rewind },
      },
      parameters: {
        unix_socket_directories: dir,
        password_encryption: 'scram-sha-256',
      },
      pg_hba: [
        'local all all scram-sha-256',
        'host all all 127.0.0.1/32 scram-sha-256',
        'host replication replicator 127.0.0.1/32 scram-sha-256',
      ],
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
}

/**
 * A SCRAM-SHA-256 verifier for `password` (RFC 7677, PostgreSQL's `rolpassword` format), so `CREATE ROLE` carries
 * no plain-text password even in the statement PostgreSQL parses and might log.
 */
export function scramVerifier(password, iterations = 4096) {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const hmac = (key, text) => createHmac('sha256', key).update(text).digest();
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * The gateway's login role and database, run once on the leader by the superuser. The role owns its database (so
 * the gateway creates its tables there), is in `pg_monitor` (so a standby's `pg_stat_wal_receiver`, which gives
 * the term, is readable) and may run `pg_read_file` (the gateway reads `pg_wal/<term>.history` to tell whether a
 * session's write survived a failover). Without `pg_read_server_files`, PostgreSQL confines `pg_read_file` to the
 * data directory: Patroni's configuration (with the superuser's password) stays out of reach. It is no superuser
 * and cannot replicate.
 */
export function gatewayRoleSql(password) {
  return {
    postgres: [
      `CREATE ROLE replikit LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '${scramVerifier(password)}';`,
      'GRANT pg_monitor TO replikit;',
      'CREATE DATABASE replikit OWNER replikit;',
    ].join('\n'),
    // Function privileges belong to each database: this one is granted where the gateway connects.
    replikit: 'GRANT EXECUTE ON FUNCTION pg_read_file(text, bigint, bigint, boolean) TO replikit;',
  };
}

/** The gateway's libpq conninfo for the node on `pgPort` (held in a 0600 file, never on argv). */
export const gatewayConninfo = (pgPort, password) =>
  `host=127.0.0.1 port=${pgPort} dbname=replikit user=replikit password=${password}`;
