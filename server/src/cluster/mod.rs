//! `dev-cluster`: a PostgreSQL 15 primary with streaming hot standbys, one gateway per node,
//! and operator controls, in one process.
//!
//! Why a supervisor process: the demo, the tests and anyone trying the SDK need a real
//! replicated backend with one command, and need to *break* it on purpose (kill, hang,
//! promote, rejoin, split brain). This process owns the temp directory, the PostgreSQL
//! processes (through pg_ctl), every gateway (in-process, one listener per node) and the
//! admin API; on SIGINT/SIGTERM it stops them all and removes the temp directory.
//!
//! Nothing is open to whoever else can reach loopback: PostgreSQL takes a generated password
//! (SCRAM, see [`pg`]), every gateway a generated bearer token and only the browser origins
//! given with `--cors-origin`, the admin API its own token. The three secrets are in the state
//! file (mode 0600, in a 0700 per-user directory, see [`state`]), never on a command line or
//! in a log line.

pub mod admin;
pub mod error;
mod ops;
pub mod pg;
pub mod state;
mod watchdog;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::gateway::{GatewayConfig, GatewayHandle};
use error::ClusterError;
use pg::{PgNode, PgTools};

/// How commits wait for standbys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Replication {
    /// `synchronous_standby_names = 'ANY 1 (<live standbys>)'`: acknowledged writes survive a failover.
    Sync,
    /// Plain asynchronous streaming.
    Async,
}

/// `dev-cluster` options.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub replicas: usize,
    /// Gateway port of n0 (n1.. use the next ports); 0 picks free ports.
    pub port: u16,
    pub admin_port: u16,
    /// PostgreSQL port of n0 (n1.. use the next ports); 0 picks free ports.
    pub pg_port: u16,
    /// Browser origins the gateways allow (CORS); none by default.
    pub cors_origins: Vec<String>,
    pub replication: Replication,
    pub auto_failover: bool,
    pub json: bool,
    pub state_file: PathBuf,
    /// Shut down when stdin reaches EOF (lets a test harness that dies take the cluster with it).
    pub stop_on_stdin_close: bool,
}

/// One node: its PostgreSQL and its gateway.
pub struct Node {
    pub pg: PgNode,
    pub gateway_addr: SocketAddr,
    pub gateway: Option<GatewayHandle>,
    pub pg_running: bool,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://{}", self.gateway_addr)
    }

    /// (Re)start this node's gateway on its port with a fresh pool, requiring `access`.
    async fn start_gateway(&mut self, access: &GatewayAccess) -> Result<(), ClusterError> {
        self.gateway.take();
        let pool = crate::db::pool(&self.pg.conninfo()).map_err(ClusterError::InvalidState)?;
        let config = GatewayConfig {
            node_id: self.pg.id.clone(),
            auth_token: Some(access.token.clone()),
            cors_origins: access.cors_origins.clone(),
        };
        let port = self.gateway_addr.port();
        let handle = GatewayHandle::start(self.gateway_addr, config, pool)
            .await
            .map_err(|e| ClusterError::bind(e, port, &format!("{}'s gateway", self.pg.id), "--port"))?;
        self.gateway_addr = handle.addr;
        self.gateway = Some(handle);
        Ok(())
    }
}

/// What every gateway of the cluster requires: the bearer token, and the browser origins it
/// allows (none unless `--cors-origin` names some: a web page elsewhere must not reach dev data).
#[derive(Debug, Clone)]
pub struct GatewayAccess {
    pub token: String,
    pub cors_origins: Vec<String>,
}

/// Mutable cluster state, behind one lock so operator actions never interleave.
pub struct Inner {
    pub nodes: Vec<Node>,
    /// The node the supervisor considers primary (the last one promoted).
    pub primary: String,
}

impl Inner {
    fn node_mut(&mut self, id: &str) -> Result<&mut Node, ClusterError> {
        self.nodes.iter_mut().find(|n| n.pg.id == id).ok_or_else(|| ClusterError::UnknownNode(id.to_string()))
    }

    fn node(&self, id: &str) -> Result<&Node, ClusterError> {
        self.nodes.iter().find(|n| n.pg.id == id).ok_or_else(|| ClusterError::UnknownNode(id.to_string()))
    }
}

/// The supervisor.
pub struct Cluster {
    pub tools: PgTools,
    pub root: PathBuf,
    pub replication: Replication,
    pub admin_token: String,
    pub gateway_access: GatewayAccess,
    pub pg_password: pg::Password,
    pub auto_failover: AtomicBool,
    pub inner: Mutex<Inner>,
}

impl Cluster {
    /// Check every chosen port, create the temp directory (mode 0700) with the `pgpass` file,
    /// and plan the nodes (nothing started yet).
    fn create(opts: &ClusterOptions) -> Result<Arc<Self>, ClusterError> {
        let tools = PgTools::detect()?;
        let (gateway_ports, pg_ports) = plan_ports(opts)?;
        let root = base_dir().join(format!("replikit-dev-{}-{}", std::process::id(), &random_hex(4)));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&root)?;
        }
        tools.chown(&root)?;
        let password = pg::Password(random_hex(16));
        pg::write_passfile(&tools, &root, &password)?;
        let mut nodes = Vec::new();
        for (i, (gateway_port, pg_port)) in gateway_ports.into_iter().zip(pg_ports).enumerate() {
            let id = format!("n{i}");
            let data_dir = root.join(&id);
            nodes.push(Node {
                pg: PgNode { id, port: pg_port, data_dir, root: root.clone(), password: password.clone() },
                gateway_addr: SocketAddr::from(([127, 0, 0, 1], gateway_port)),
                gateway: None,
                pg_running: false,
            });
        }
        Ok(Arc::new(Cluster {
            tools,
            root,
            replication: opts.replication,
            admin_token: random_hex(16),
            gateway_access: GatewayAccess { token: random_hex(16), cors_origins: opts.cors_origins.clone() },
            pg_password: password,
            auto_failover: AtomicBool::new(opts.auto_failover),
            inner: Mutex::new(Inner { nodes, primary: "n0".into() }),
        }))
    }

    /// initdb the primary, create the schema, base-backup and start the standbys, wait until
    /// they stream, then start every gateway.
    async fn boot(&self) -> Result<(), ClusterError> {
        let mut inner = self.inner.lock().await;
        let primary = inner.nodes[0].pg.clone();
        primary.init(&self.tools).await?;
        primary.start(&self.tools, "").await?;
        inner.nodes[0].pg_running = true;
        let client = ops::connect(&primary).await?;
        client.batch_execute(crate::db::SCHEMA_SQL).await?;
        let mut backups = tokio::task::JoinSet::new();
        for node in inner.nodes.iter().skip(1) {
            let (tools, pg, source) = (self.tools.clone(), node.pg.clone(), primary.clone());
            backups.spawn(async move {
                pg.base_backup(&tools, &source).await?;
                pg.start(&tools, "").await
            });
        }
        while let Some(done) = backups.join_next().await {
            done.map_err(|e| ClusterError::InvalidState(e.to_string()))??;
        }
        for node in inner.nodes.iter_mut() {
            node.pg_running = true;
        }
        let standbys = inner.nodes.len() - 1;
        ops::wait_streaming(&client, standbys).await?;
        if self.replication == Replication::Sync {
            watchdog::sync_standbys(&client).await?;
        }
        for node in inner.nodes.iter_mut() {
            node.start_gateway(&self.gateway_access).await?;
        }
        Ok(())
    }

    /// Stop every gateway and PostgreSQL (fast, then immediate) and remove the temp directory.
    pub async fn shutdown(&self) {
        let begun = std::time::Instant::now();
        let mut inner = self.inner.lock().await;
        let mut stops = tokio::task::JoinSet::new();
        for node in inner.nodes.iter_mut() {
            node.gateway.take();
            let (tools, pg) = (self.tools.clone(), node.pg.clone());
            if pg.data_dir.join("postmaster.pid").exists() {
                stops.spawn(async move {
                    if pg.stop(&tools, "fast").await.is_err() {
                        let _ = pg.stop(&tools, "immediate").await;
                    }
                });
            }
            node.pg_running = false;
        }
        while stops.join_next().await.is_some() {}
        crate::log!("stopped PostgreSQL in {:?}", begun.elapsed());
        let stopped = std::time::Instant::now();
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            crate::log!("could not remove {}: {e}", self.root.display());
        }
        crate::log!("removed {} in {:?}", self.root.display(), stopped.elapsed());
    }
}

/// Run `dev-cluster` until SIGINT/SIGTERM (or stdin EOF when asked).
pub async fn run(opts: ClusterOptions) -> Result<(), ClusterError> {
    let stop = stop_signal(opts.stop_on_stdin_close)?;
    let cluster = Cluster::create(&opts)?;
    stop_postgres_on_panic(&cluster, opts.state_file.clone()).await;
    let started = std::time::Instant::now();
    let booted = tokio::select! {
        booted = cluster.boot() => booted,
        _ = stop.clone().wait() => Err(ClusterError::InvalidState("interrupted during startup".into())),
    };
    let admin = match booted {
        Ok(()) => admin::bind(opts.admin_port)
            .await
            .map_err(|e| ClusterError::bind(e, opts.admin_port, "the admin API", "--admin-port")),
        Err(e) => Err(e),
    };
    let admin = match admin {
        Ok(listener) => listener,
        Err(e) => {
            cluster.shutdown().await;
            return Err(e);
        }
    };
    let info = state::ClusterInfo::collect(&cluster, admin.local_addr()?).await;
    if let Err(e) = info.write(&opts.state_file) {
        cluster.shutdown().await;
        return Err(ClusterError::InvalidState(format!(
            "cannot write the state file {}: {e}",
            opts.state_file.display()
        )));
    }
    info.print(opts.json, started.elapsed(), &opts.state_file);
    tokio::spawn(admin::serve(admin, cluster.clone()));
    tokio::spawn(watchdog::run(cluster.clone()));
    stop.wait().await;
    crate::log!("stopping");
    cluster.shutdown().await;
    let _ = std::fs::remove_file(&opts.state_file);
    Ok(())
}

/// With `panic = "abort"` (the release profile) a panic anywhere ends this process at once,
/// without [`Cluster::shutdown`], and the PostgreSQL nodes, which pg_ctl daemonized, would
/// outlive it: so the panic hook stops them first, and removes the directory and the state
/// file (which holds the admin token). With unwinding (tests, debug builds) a panic in a
/// gateway task only ends that task, and the nodes must keep running.
async fn stop_postgres_on_panic(cluster: &Cluster, state_file: PathBuf) {
    if cfg!(panic = "abort") {
        let tools = cluster.tools.clone();
        let dirs: Vec<PathBuf> = cluster.inner.lock().await.nodes.iter().map(|n| n.pg.data_dir.clone()).collect();
        let root = cluster.root.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            crate::log!("panicked: stopping PostgreSQL (immediate) and removing {} before exiting", root.display());
            for dir in &dirs {
                tools.stop_immediately_blocking(dir);
            }
            let _ = std::fs::remove_dir_all(&root);
            let _ = std::fs::remove_file(&state_file);
        }));
    }
}

/// A latch set by SIGINT, SIGTERM or (optionally) stdin EOF.
#[derive(Clone)]
struct StopSignal(tokio::sync::watch::Receiver<bool>);

impl StopSignal {
    async fn wait(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

fn stop_signal(on_stdin_close: bool) -> Result<StopSignal, ClusterError> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let tx = Arc::new(tx);
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        signal_tx.send_replace(true);
    });
    if on_stdin_close {
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            tx.send_replace(true);
        });
    }
    Ok(StopSignal(rx))
}

/// Where the temp directory goes: `$REPLIKIT_DEV_DIR`, else `/dev/shm` when it is a
/// directory (tmpfs: on this project's CI disks, deleting three data directories from ext4
/// took 5-6 s, from tmpfs a few ms), else `std::env::temp_dir()`.
fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REPLIKIT_DEV_DIR") {
        return PathBuf::from(dir);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() && std::fs::metadata(&shm).is_ok_and(|m| !m.permissions().readonly()) {
        return shm;
    }
    std::env::temp_dir()
}

/// The gateway and PostgreSQL ports of n0, n1, ...: the chosen ones (each checked free now,
/// so that a taken port is named before anything starts) or free ones.
fn plan_ports(opts: &ClusterOptions) -> Result<(Vec<u16>, Vec<u16>), ClusterError> {
    let count = opts.replicas + 1;
    let mut gateway = Vec::new();
    let mut pg = Vec::new();
    for i in 0..count {
        let id = format!("n{i}");
        gateway.push(chosen_port(opts.port, i, &format!("{id}'s gateway"), "--port")?);
        pg.push(match chosen_port(opts.pg_port, i, &format!("{id}'s PostgreSQL"), "--pg-port")? {
            0 => free_port()?,
            port => port,
        });
    }
    if opts.admin_port != 0 {
        check_free(opts.admin_port, "the admin API", "--admin-port")?;
    }
    Ok((gateway, pg))
}

/// `base + offset` checked free (0 stays 0: pick one later).
fn chosen_port(base: u16, offset: usize, what: &str, flag: &'static str) -> Result<u16, ClusterError> {
    if base == 0 {
        return Ok(0);
    }
    let port = u16::try_from(base as usize + offset)
        .map_err(|_| ClusterError::BadRequest(format!("{flag} {base} leaves no port for {what}")))?;
    check_free(port, what, flag)?;
    Ok(port)
}

fn check_free(port: u16, what: &str, flag: &'static str) -> Result<(), ClusterError> {
    std::net::TcpListener::bind(("127.0.0.1", port)).map(drop).map_err(|e| ClusterError::bind(e, port, what, flag))
}

/// A free loopback port (bound then released).
pub fn free_port() -> Result<u16, ClusterError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` random bytes from the OS, as hex.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
