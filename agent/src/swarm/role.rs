//! The node's side of `node promote`/`demote`: the worker's session reports the role the node
//! spec asks for; this watcher renews the certificate for it, starts or stops the embedded
//! manager, and asks to join Raft once promoted. Each step is repeated until the managers'
//! view agrees, so a crash half-way is finished by the next start.

use super::worker::RoleSignal;
use super::{Member, SwarmError, SwarmNode};
use berth_orchestrator::swarm::ca::{self, KeyedCert, Role};
use berth_orchestrator::swarm::manager::roles::{
    MEMBERS_PATH, MemberRequest, RENEW_PATH, RenewRequest, RenewResponse,
};
use berth_orchestrator::swarm::manager::{Manager, ManagerConfig, ManagerError};
use berth_orchestrator::swarm::raft::DB_FILE;
use berth_orchestrator::swarm::tls;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often an unfinished change is retried when no new signal arrives.
const RETRY: Duration = Duration::from_secs(2);

impl SwarmNode {
    /// Runs until the member stops; acts on every signal and retries unfinished changes.
    pub(super) async fn watch_role(self, mut rx: watch::Receiver<Option<RoleSignal>>) {
        let started = Instant::now();
        loop {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(RETRY) => {}
            }
            let Some(signal) = rx.borrow_and_update().clone() else {
                continue;
            };
            if let Err(e) = self.converge_role(&signal, started).await {
                tracing::warn!(error = %e, wanted = signal.role.as_str(), "changing this node's swarm role");
            }
        }
    }

    async fn converge_role(&self, signal: &RoleSignal, started: Instant) -> Result<(), SwarmError> {
        let ask = {
            let mut guard = self.0.member.lock().await;
            let Some(m) = guard.as_mut() else {
                return Ok(());
            };
            match (m.saved.role, signal.role) {
                (Role::Worker, Role::Manager) => {
                    self.promote(m, signal).await?;
                    true
                }
                (Role::Manager, Role::Worker) if !signal.raft_member => {
                    self.demote(m, signal).await?;
                    false
                }
                // A manager that is not a voter: just promoted, or its join's background add
                // gave up; the join itself adds it, so give that a head start.
                (Role::Manager, Role::Manager) => {
                    !signal.raft_member && started.elapsed() > RETRY * 2
                }
                _ => false,
            }
        };
        if ask {
            self.ask_membership(signal).await?;
        }
        Ok(())
    }

    /// A certificate for the role the node spec names, from the first manager that answers.
    async fn renew(
        &self,
        m: &Member,
        managers: &[String],
        want: Role,
    ) -> Result<KeyedCert, SwarmError> {
        let (csr_pem, key_pem) = ca::new_csr()?;
        let http = tls::client(&m.ca, Some(&m.cert)).map_err(ManagerError::from)?;
        let req = RenewRequest {
            csr_pem,
            advertise_addr: m.saved.advertise_addr.clone(),
        };
        let mut last = String::from("no manager address known");
        for addr in managers.iter().chain(&m.saved.managers) {
            let resp = http
                .post(format!("https://{addr}{RENEW_PATH}"))
                .json(&req)
                .send()
                .await
                .and_then(|r| r.error_for_status());
            match resp {
                Ok(r) => {
                    let renewed: RenewResponse = r
                        .json()
                        .await
                        .map_err(|e| SwarmError::Remote(format!("renewal answer: {e}")))?;
                    if renewed.role != want {
                        return Err(SwarmError::Remote(format!(
                            "the managers issued a {} certificate, not {}",
                            renewed.role.as_str(),
                            want.as_str()
                        )));
                    }
                    return Ok(KeyedCert {
                        cert_pem: renewed.cert_pem,
                        key_pem,
                    });
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(SwarmError::Remote(format!(
            "renewing the node certificate: {last}"
        )))
    }

    /// Worker to manager: new certificate, a manager on the cluster port, and a worker session
    /// under the new certificate. Joining Raft follows ([`SwarmNode::ask_membership`]).
    async fn promote(&self, m: &mut Member, signal: &RoleSignal) -> Result<(), SwarmError> {
        let cert = self.renew(m, &signal.managers, Role::Manager).await?;
        // Whatever an earlier stint as manager left would carry an old membership.
        let db = self.0.dir.join(DB_FILE);
        let _ = std::fs::remove_file(&db);
        let manager = Manager::start(ManagerConfig {
            dir: self.0.dir.clone(),
            node_id: m.saved.node_id.clone(),
            advertise_addr: m.saved.advertise_addr.clone(),
            listen_addr: m.saved.listen_addr,
            ca_pem: m.ca.clone(),
            cert: cert.clone(),
        })
        .await?;
        let mut saved = m.saved.clone();
        saved.role = Role::Manager;
        if !signal.managers.is_empty() {
            saved.managers = signal.managers.clone();
        }
        if let Err(e) = self.save(&saved, &m.ca, &cert) {
            manager.shutdown().await;
            return Err(e);
        }
        self.restart_worker(m, saved, cert).await?;
        m.manager = Some(manager);
        tracing::info!("this node was promoted to a swarm manager");
        Ok(())
    }

    /// Manager to worker, once Raft no longer counts this node: worker certificate, the
    /// manager and its database gone, the worker session under the new certificate.
    async fn demote(&self, m: &mut Member, signal: &RoleSignal) -> Result<(), SwarmError> {
        let others: Vec<String> = signal
            .managers
            .iter()
            .filter(|a| **a != m.saved.advertise_addr)
            .cloned()
            .collect();
        let cert = self.renew(m, &others, Role::Worker).await?;
        let mut saved = m.saved.clone();
        saved.role = Role::Worker;
        if !others.is_empty() {
            saved.managers = others;
        }
        self.save(&saved, &m.ca, &cert)?;
        if let Some(manager) = m.manager.take() {
            manager.shutdown().await;
        }
        let db = self.0.dir.join(DB_FILE);
        if let Err(e) = std::fs::remove_file(&db)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %db.display(), error = %e, "removing the Raft database");
        }
        self.restart_worker(m, saved, cert).await?;
        tracing::info!("this node was demoted to a swarm worker");
        Ok(())
    }

    /// Replaces the worker session (tasks keep running: the new session adopts them).
    async fn restart_worker(
        &self,
        m: &mut Member,
        saved: super::Saved,
        cert: KeyedCert,
    ) -> Result<(), SwarmError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = self.start_worker(&saved, &m.ca, &cert, stop_rx, m.role_tx.clone())?;
        let _ = m.worker_stop.send(true);
        let old = std::mem::replace(&mut m.worker, worker);
        let _ = tokio::time::timeout(Duration::from_secs(3), old).await;
        m.worker_stop = stop_tx;
        m.saved = saved;
        m.cert = cert;
        self.set_header(Some(m.saved.role));
        Ok(())
    }

    /// Asks the managers to add this (promoted) manager to Raft; they answer once it votes.
    async fn ask_membership(&self, signal: &RoleSignal) -> Result<(), SwarmError> {
        let (http, addr, managers) = {
            let guard = self.0.member.lock().await;
            let Some(m) = guard.as_ref() else {
                return Ok(());
            };
            let http = tls::client(&m.ca, Some(&m.cert)).map_err(ManagerError::from)?;
            (
                http,
                m.saved.advertise_addr.clone(),
                m.saved.managers.clone(),
            )
        };
        let req = MemberRequest { addr: addr.clone() };
        let mut last = String::from("no manager address known");
        for target in signal
            .managers
            .iter()
            .chain(&managers)
            .filter(|a| **a != addr)
        {
            let resp = http
                .post(format!("https://{target}{MEMBERS_PATH}"))
                .json(&req)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .and_then(|r| r.error_for_status());
            match resp {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{target}: {e}"),
            }
        }
        Err(SwarmError::Remote(format!("joining Raft: {last}")))
    }
}
