//! The `replikit-server` command line: `serve` (one gateway), `dev-cluster` (a local
//! replicated backend with failover controls) and `ctl` (operator controls).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use replikit_server::cluster::{self, ClusterOptions, Replication};
use replikit_server::gateway::{GatewayConfig, GatewayHandle};

#[derive(Parser)]
#[command(
    name = "replikit-server",
    version,
    about = "Reference backend for Replikit: an HTTP gateway over PostgreSQL streaming replication"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve protocol v1 in front of one PostgreSQL node.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7100")]
        listen: SocketAddr,
        /// libpq connection string of the node, e.g. "host=127.0.0.1 port=5432 user=postgres".
        /// Every local user can read it in `ps`: with a password, use --pg-file or REPLIKIT_PG.
        #[arg(long, conflicts_with = "pg_file")]
        pg: Option<String>,
        /// File holding the connection string (keep it mode 0600). Else: --pg, then $REPLIKIT_PG.
        #[arg(long)]
        pg_file: Option<PathBuf>,
        /// This node's id, reported in X-Replikit-Node and /v1/health.
        #[arg(long)]
        node_id: String,
        /// Require `Authorization: Bearer <token>` on every request. Every local user can read
        /// it in `ps`: prefer --auth-token-file or REPLIKIT_AUTH_TOKEN.
        #[arg(long, conflicts_with = "auth_token_file")]
        auth_token: Option<String>,
        /// File holding the bearer token (keep it mode 0600). Else: --auth-token, then $REPLIKIT_AUTH_TOKEN.
        #[arg(long)]
        auth_token_file: Option<PathBuf>,
        /// Allowed browser origin (repeatable; `*` for any).
        #[arg(long)]
        cors_origin: Vec<String>,
        /// Keep idempotency records at least this long (e.g. 7d, 12h, 90s): longer than any
        /// client's outbox holds a write. Older records are swept on the primary.
        #[arg(long, default_value = "7d", value_parser = replikit_server::db::parse_window)]
        idempotency_window: std::time::Duration,
    },
    /// Run a PostgreSQL primary + streaming standbys + one gateway per node, until Ctrl-C.
    ///
    /// Everything listens on 127.0.0.1 only. The gateways require a generated bearer token,
    /// PostgreSQL a generated password (SCRAM), the admin API a generated token: all three
    /// are in the state file (mode 0600), never printed to the terminal.
    DevCluster {
        /// Number of streaming standbys (n1, n2, ...) beside the primary n0.
        #[arg(long, default_value_t = 2)]
        replicas: usize,
        /// Gateway port of n0; n1.. use the next ports. 0 picks free ports.
        #[arg(long, default_value_t = 7100)]
        port: u16,
        /// Admin API port. Default: --port + 100 (7200), or a free port when --port is 0.
        #[arg(long)]
        admin_port: Option<u16>,
        /// PostgreSQL port of n0; n1.. use the next ports. Default: free ports.
        #[arg(long, default_value_t = 0)]
        pg_port: u16,
        /// Browser origin the gateways allow, e.g. http://127.0.0.1:8080 (repeatable). Default:
        /// none, so no web page can call them from a browser.
        #[arg(long)]
        cors_origin: Vec<String>,
        /// sync: a commit waits for one standby (acknowledged writes survive a failover);
        /// async: plain asynchronous streaming.
        #[arg(long, value_enum, default_value_t = Replication::Sync)]
        replication: Replication,
        /// Promote the most advanced standby after the primary is down for 3 s.
        #[arg(long)]
        auto_failover: bool,
        /// Print one JSON line, the state file's object with its secrets (for a program reading
        /// this process's stdout through a pipe), instead of a summary.
        #[arg(long)]
        json: bool,
        /// Where to write the state file (endpoints, admin URL, tokens, PostgreSQL password;
        /// mode 0600). Default: dev-cluster-<port>.json in $XDG_RUNTIME_DIR/replikit, else in
        /// <temp dir>/replikit-<uid> (created mode 0700).
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Also stop when stdin is closed (for test harnesses).
        #[arg(long)]
        stop_on_stdin_close: bool,
        /// Keep idempotency records at least this long (e.g. 7d, 12h, 90s): longer than any
        /// client's outbox holds a write. Older records are swept on the primary.
        #[arg(long, default_value = "7d", value_parser = replikit_server::db::parse_window)]
        idempotency_window: std::time::Duration,
    },
    /// Operator controls for a running dev-cluster.
    Ctl {
        /// The cluster's state file. Default: the one `dev-cluster --port <--port>` writes.
        #[arg(long, conflicts_with = "port")]
        state_file: Option<PathBuf>,
        /// Gateway port of the cluster's n0, which names its default state file.
        #[arg(long, default_value_t = 7100)]
        port: u16,
        /// status | kill | start | promote | rejoin | hang | unhang | auto-failover
        action: String,
        /// Node id (n0, n1, ...), or on|off for auto-failover.
        node: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Ctl { state_file, port, action, node } => {
            match state_file.map_or_else(|| cluster::state::default_path(port), Ok) {
                Ok(path) => replikit_server::ctl::run(&path, &action, node.as_deref()),
                Err(e) => {
                    eprintln!("replikit-server ctl: {e}");
                    2
                }
            }
        }
        other => {
            // Exit without dropping the runtime: dropping it would wait for the blocking
            // stdin reader of `--stop-on-stdin-close`, which never returns.
            let runtime = runtime();
            let code = runtime.block_on(run_async(other));
            std::process::exit(code);
        }
    };
    std::process::exit(code);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

async fn run_async(command: Command) -> i32 {
    match command {
        Command::Serve {
            listen,
            pg,
            pg_file,
            node_id,
            auth_token,
            auth_token_file,
            cors_origin,
            idempotency_window,
        } => {
            replikit_server::db::set_idempotency_window(idempotency_window);
            let Some((pg, auth_token)) = serve_secrets(pg, pg_file, auth_token, auth_token_file) else {
                return 2;
            };
            let pool = match replikit_server::db::pool(&pg) {
                Ok(pool) => pool,
                Err(e) => {
                    eprintln!("{e}");
                    return 2;
                }
            };
            spawn_schema_setup(pool.clone());
            let config = GatewayConfig { node_id, auth_token, cors_origins: cors_origin };
            let gateway = match GatewayHandle::start(listen, config, pool).await {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("cannot listen on {listen}: {e}");
                    return 1;
                }
            };
            eprintln!("replikit-server: serving protocol v1 on http://{}", gateway.addr);
            let _ = tokio::signal::ctrl_c().await;
            0
        }
        Command::DevCluster {
            replicas,
            port,
            admin_port,
            pg_port,
            cors_origin,
            replication,
            auto_failover,
            json,
            state_file,
            stop_on_stdin_close,
            idempotency_window,
        } => {
            replikit_server::db::set_idempotency_window(idempotency_window);
            let admin_port = match admin_port {
                Some(p) => p,
                None if port == 0 => 0,
                None => match port.checked_add(100) {
                    Some(p) => p,
                    None => {
                        eprintln!("replikit dev-cluster: --port {port} + 100 is no port; pass --admin-port");
                        return 2;
                    }
                },
            };
            let state_file = match state_file.map_or_else(|| cluster::state::default_path(port), Ok) {
                Ok(path) => path,
                Err(e) => {
                    eprintln!("replikit dev-cluster: {e}");
                    return 2;
                }
            };
            let opts = ClusterOptions {
                replicas,
                port,
                admin_port,
                pg_port,
                cors_origins: cors_origin,
                replication,
                auto_failover,
                json,
                state_file,
                stop_on_stdin_close,
            };
            match cluster::run(opts).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("replikit dev-cluster: {e}");
                    1
                }
            }
        }
        Command::Ctl { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// The connection string and the token, from files, the environment or (with a warning)
/// argv; `None` after printing why when they cannot be had.
fn serve_secrets(
    pg: Option<String>,
    pg_file: Option<PathBuf>,
    auth_token: Option<String>,
    auth_token_file: Option<PathBuf>,
) -> Option<(String, Option<String>)> {
    use replikit_server::secrets::{has_password, resolve};
    let pg_from_argv = pg.is_some();
    let resolved = resolve(pg, pg_file.as_deref(), "REPLIKIT_PG", "--pg").and_then(|pg| {
        let token = resolve(auth_token, auth_token_file.as_deref(), "REPLIKIT_AUTH_TOKEN", "--auth-token")?;
        Ok((pg, token))
    });
    let (pg, token) = match resolved {
        Ok((Some(pg), token)) => (pg, token),
        Ok((None, _)) => {
            eprintln!("replikit-server: give the connection string with --pg-file, REPLIKIT_PG or --pg");
            return None;
        }
        Err(e) => {
            eprintln!("replikit-server: {e}");
            return None;
        }
    };
    // A connection string without a password on argv is no secret: warn only when it holds one.
    let pg_warning = pg.warning.filter(|_| !pg_from_argv || has_password(&pg.value));
    for warning in [pg_warning, token.as_ref().and_then(|t| t.warning.clone())].into_iter().flatten() {
        eprintln!("replikit-server: warning: {warning}");
    }
    Some((pg.value, token.map(|t| t.value)))
}

/// Create the tables once the node is reachable (retrying every second; a standby gets
/// them by replication, so it stops trying there).
fn spawn_schema_setup(pool: deadpool_postgres::Pool) {
    tokio::spawn(async move {
        loop {
            match replikit_server::db::ensure_schema(&pool).await {
                Ok(_) => return,
                Err(e) => eprintln!("replikit-server: schema setup waiting for the database: {e}"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}
