//! The etcd backend: a counting semaphore per group guarded by a revision, slots under leases.
//!
//! Keys (values are JSON):
//!
//! | key | value | written by |
//! | --- | --- | --- |
//! | `/abos/fleet/<group>/max_concurrency` | `2` | operator (`set_max_concurrency`); absent = 1 |
//! | `/abos/fleet/<group>/semaphore` | last acquirer and time; only its mod revision matters | every acquire |
//! | `/abos/fleet/<group>/slots/<host>` | [`SlotHolder`], attached to the host's lease | acquire; removed by release (lease revoke) or lease expiry |
//! | `/abos/fleet/<group>/halted/<version>` | [`Halt`] | a host whose health failed, or an operator |
//! | `/abos/fleet/<group>/hosts/<host>` | [`HostReport`] | each host |
//!
//! Acquire reads the semaphore, the limit, the version's halt key and the slot keys in one
//! read-only txn (one revision), then writes the slot in a txn that only succeeds if the
//! semaphore's and the limit's mod revisions are unchanged and the version is not halted, and
//! bumps the semaphore in the same txn. Every acquire writes the semaphore, so two hosts that
//! read the same count cannot both win; a slot key only ever disappears otherwise (release,
//! expiry), which can only lower the count. Hence at most `max_concurrency` slot keys exist
//! whenever a slot is granted.

pub mod client;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use semver::Version;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Coordinator;
use crate::error::{Error, Result};
use crate::model::{
    AcquireObserver, AcquireOptions, FleetView, Halt, HostEntry, HostReport, Name, Slot,
    SlotHolder, WaitStatus,
};
use client::{
    EtcdClient, KeepAliveStream, KeyValue, LeaseGrant, TxnResponse, cmp_absent, cmp_mod_revision,
    op_delete, op_put, op_range,
};

/// The limit of a group that never set one.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 1;

/// The key layout of one group.
#[derive(Debug, Clone)]
struct Keys {
    root: String,
}

impl Keys {
    fn new(group: &Name) -> Self {
        Keys {
            root: format!("/abos/fleet/{group}/"),
        }
    }
    fn max(&self) -> String {
        format!("{}max_concurrency", self.root)
    }
    fn semaphore(&self) -> String {
        format!("{}semaphore", self.root)
    }
    fn slots(&self) -> String {
        format!("{}slots/", self.root)
    }
    fn slot(&self, host: &Name) -> String {
        format!("{}slots/{host}", self.root)
    }
    fn halted_prefix(&self) -> String {
        format!("{}halted/", self.root)
    }
    fn halted(&self, version: &Version) -> String {
        format!("{}halted/{version}", self.root)
    }
    fn hosts(&self) -> String {
        format!("{}hosts/", self.root)
    }
    fn host(&self, host: &Name) -> String {
        format!("{}hosts/{host}", self.root)
    }
}

/// Coordination on an etcd v3 cluster through its JSON gateway.
#[derive(Debug)]
pub struct EtcdCoordinator {
    client: EtcdClient,
}

/// What acquire reads before it writes.
struct Snapshot {
    semaphore_rev: i64,
    max_rev: i64,
    max: u32,
    halt: Option<Halt>,
    slots: Vec<(KeyValue, SlotHolder)>,
}

impl EtcdCoordinator {
    /// A coordinator over `client`.
    pub fn new(client: EtcdClient) -> Self {
        EtcdCoordinator { client }
    }

    /// The underlying client (endpoints, round-trip counter).
    pub fn client(&self) -> &EtcdClient {
        &self.client
    }

    async fn txn(&self, body: serde_json::Value) -> Result<TxnResponse> {
        self.client.call("v3/kv/txn", &body).await
    }

    async fn snapshot(&self, keys: &Keys, version: &Version) -> Result<Snapshot> {
        let r = self
            .txn(json!({"success": [
                op_range(&keys.semaphore(), false),
                op_range(&keys.max(), false),
                op_range(&keys.halted(version), false),
                op_range(&keys.slots(), true),
            ]}))
            .await?;
        let mut ranges = r
            .responses
            .into_iter()
            .map(|op| op.response_range.unwrap_or_default().kvs);
        let mut next = || ranges.next().unwrap_or_default();
        let (semaphore, max, halt, slots) = (next(), next(), next(), next());
        let (max_rev, max) = match max.first() {
            Some(kv) => (kv.mod_revision, decode::<u32>(kv)?),
            None => (0, DEFAULT_MAX_CONCURRENCY),
        };
        let halt = halt.first().map(decode::<Halt>).transpose()?;
        let slots = slots
            .into_iter()
            .map(|kv| decode::<SlotHolder>(&kv).map(|h| (kv, h)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Snapshot {
            semaphore_rev: semaphore.first().map_or(0, |kv| kv.mod_revision),
            max_rev,
            max,
            halt,
            slots,
        })
    }

    async fn grant(&self, ttl: Duration) -> Result<i64> {
        let ttl = ttl.as_secs().max(1);
        let g: LeaseGrant = self
            .client
            .call(
                "v3/lease/grant",
                &json!({"TTL": ttl.to_string(), "ID": "0"}),
            )
            .await?;
        Ok(g.id)
    }

    async fn revoke(&self, lease: i64) -> Result<()> {
        let r: Result<serde_json::Value> = self
            .client
            .call("v3/lease/revoke", &json!({"ID": lease.to_string()}))
            .await;
        match r {
            // Already gone (expired or revoked): the slot is free either way.
            Err(Error::EtcdRefused { message, .. }) if message.contains("lease not found") => {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// One attempt: `Ok(Some(slot))` granted, `Ok(None)` lost a race, `Err(WaitStatus)` wait.
    async fn try_acquire(
        &self,
        keys: &Keys,
        group: &Name,
        host: &Name,
        version: &Version,
        ttl: Duration,
        lease: &mut Option<i64>,
    ) -> Result<std::result::Result<Option<Slot>, WaitStatus>> {
        let snap = self.snapshot(keys, version).await?;
        if let Some(halt) = snap.halt {
            return Err(Error::Halted {
                halt: Box::new(halt),
            });
        }
        let mine = snap.slots.iter().find(|(_, h)| &h.host == host);
        let others: Vec<String> = snap
            .slots
            .iter()
            .filter(|(_, h)| &h.host != host)
            .map(|(_, h)| h.host.to_string())
            .collect();
        // A host that already holds a slot (it re-acquires after a reboot or after a lost
        // answer) keeps it; otherwise there must be room.
        if mine.is_none() && others.len() as u64 >= u64::from(snap.max) {
            return Ok(Err(WaitStatus::SlotsFull {
                held: others.len() as u32,
                max: snap.max,
                holders: others,
            }));
        }
        let old_lease = mine.map(|(kv, _)| kv.lease).filter(|l| *l != 0);
        let lease_id = match *lease {
            Some(l) => l,
            None => {
                let l = self.grant(ttl).await?;
                *lease = Some(l);
                l
            }
        };
        let now = Timestamp::now();
        let holder = SlotHolder {
            host: host.clone(),
            version: version.clone(),
            acquired_at: now,
            lease: lease_id,
        };
        let r = self
            .txn(json!({
                "compare": [
                    cmp_mod_revision(&keys.semaphore(), snap.semaphore_rev),
                    cmp_mod_revision(&keys.max(), snap.max_rev),
                    cmp_absent(&keys.halted(version)),
                ],
                "success": [
                    op_put(&keys.semaphore(), json!({"last": host, "at": now}).to_string().as_bytes(), None),
                    op_put(&keys.slot(host), &serde_json::to_vec(&holder).unwrap_or_default(), Some(lease_id)),
                ],
            }))
            .await;
        let r = match r {
            Err(Error::EtcdRefused { message, .. }) if message.contains("lease not found") => {
                // Our lease expired while we were contending: take a new one next time.
                *lease = None;
                return Ok(Ok(None));
            }
            other => other?,
        };
        if !r.succeeded {
            return Ok(Ok(None));
        }
        if let Some(old) = old_lease.filter(|old| *old != lease_id) {
            // The previous lease of this host's slot holds no key any more.
            let _ = self.revoke(old).await;
        }
        Ok(Ok(Some(Slot {
            group: group.clone(),
            host: host.clone(),
            version: version.clone(),
            lease: lease_id,
            ttl_secs: ttl.as_secs().max(1),
            acquired_at: now,
        })))
    }

    async fn read_prefixes(&self, keys: &[(String, bool)]) -> Result<Vec<Vec<KeyValue>>> {
        let ops: Vec<_> = keys.iter().map(|(k, p)| op_range(k, *p)).collect();
        let r = self.txn(json!({ "success": ops })).await?;
        Ok(r.responses
            .into_iter()
            .map(|op| op.response_range.unwrap_or_default().kvs)
            .collect())
    }
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(&kv.value()).map_err(|e| Error::BadValue {
        key: kv.key(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl Coordinator for EtcdCoordinator {
    async fn acquire_reboot_slot(
        &self,
        group: &Name,
        host: &Name,
        version: &Version,
        options: &AcquireOptions,
        observer: &dyn AcquireObserver,
    ) -> Result<Slot> {
        let keys = Keys::new(group);
        let started = Instant::now();
        let mut lease = None;
        let mut last: Option<WaitStatus> = None;
        loop {
            let status = match self
                .try_acquire(&keys, group, host, version, options.ttl, &mut lease)
                .await
            {
                Ok(Ok(Some(slot))) => return Ok(slot),
                Ok(Ok(None)) => WaitStatus::Contended,
                Ok(Err(status)) => status,
                Err(Error::Unreachable { path, tried }) => WaitStatus::Unreachable {
                    error: format!("no endpoint answered {path}: {tried}"),
                },
                Err(e) => {
                    if let Some(l) = lease {
                        let _ = self.revoke(l).await;
                    }
                    return Err(e);
                }
            };
            if last.as_ref() != Some(&status) {
                observer.waiting(&status);
            }
            let contended = status == WaitStatus::Contended;
            last = Some(status);
            let elapsed = started.elapsed();
            if elapsed >= options.deadline {
                if let Some(l) = lease {
                    let _ = self.revoke(l).await;
                }
                return Err(Error::AcquireTimeout {
                    waited_secs: elapsed.as_secs_f64(),
                    status: Box::new(last.unwrap_or(WaitStatus::Contended)),
                });
            }
            // A lost race retries at once (someone else won; the next read shows it); otherwise
            // wait, without sleeping past the deadline.
            if !contended {
                let pause = options.poll.min(options.deadline - elapsed);
                tokio::time::sleep(pause).await;
            }
        }
    }

    async fn keep_alive(&self, slot: &Slot) -> Result<Duration> {
        let r: KeepAliveStream = self
            .client
            .call("v3/lease/keepalive", &json!({"ID": slot.lease.to_string()}))
            .await?;
        let ttl = r.result.map_or(0, |k| k.ttl);
        if ttl <= 0 {
            return Err(Error::SlotLost {
                group: slot.group.to_string(),
                host: slot.host.to_string(),
                lease: slot.lease,
                reason: "expired or revoked".to_string(),
            });
        }
        Ok(Duration::from_secs(ttl as u64))
    }

    async fn release(&self, slot: &Slot) -> Result<()> {
        // Revoking the lease deletes the slot key with it.
        self.revoke(slot.lease).await
    }

    async fn report(&self, group: &Name, host: &Name, report: &HostReport) -> Result<()> {
        let mut report = report.clone();
        report.at.get_or_insert_with(Timestamp::now);
        let value = serde_json::to_vec(&report).unwrap_or_default();
        self.txn(json!({"success": [op_put(&Keys::new(group).host(host), &value, None)]}))
            .await
            .map(|_| ())
    }

    async fn halt(
        &self,
        group: &Name,
        version: &Version,
        reason: &str,
        by_host: &str,
    ) -> Result<Halt> {
        let key = Keys::new(group).halted(version);
        let halt = Halt {
            version: version.clone(),
            reason: reason.to_string(),
            by_host: by_host.to_string(),
            at: Timestamp::now(),
        };
        let value = serde_json::to_vec(&halt).unwrap_or_default();
        // The first halt wins: its reason is the one that matters; later ones read it back.
        let r = self
            .txn(json!({
                "compare": [cmp_absent(&key)],
                "success": [op_put(&key, &value, None)],
                "failure": [op_range(&key, false)],
            }))
            .await?;
        if r.succeeded {
            return Ok(halt);
        }
        let kvs = r
            .responses
            .into_iter()
            .next()
            .and_then(|op| op.response_range)
            .unwrap_or_default()
            .kvs;
        match kvs.first() {
            Some(kv) => decode(kv),
            None => Ok(halt),
        }
    }

    async fn resume(&self, group: &Name, version: &Version) -> Result<Option<Halt>> {
        let key = Keys::new(group).halted(version);
        let r = self.txn(json!({"success": [op_delete(&key)]})).await?;
        let prev = r
            .responses
            .into_iter()
            .next()
            .and_then(|op| op.response_delete_range)
            .unwrap_or_default()
            .prev_kvs;
        prev.first().map(decode).transpose()
    }

    async fn is_halted(&self, group: &Name, version: &Version) -> Result<Option<Halt>> {
        let r = self
            .read_prefixes(&[(Keys::new(group).halted(version), false)])
            .await?;
        r.into_iter()
            .next()
            .unwrap_or_default()
            .first()
            .map(decode)
            .transpose()
    }

    async fn set_max_concurrency(&self, group: &Name, max: u32) -> Result<u32> {
        let key = Keys::new(group).max();
        let r = self
            .txn(json!({"success": [
                op_range(&key, false),
                op_put(&key, max.to_string().as_bytes(), None),
            ]}))
            .await?;
        let prev = r
            .responses
            .into_iter()
            .next()
            .and_then(|op| op.response_range)
            .unwrap_or_default()
            .kvs;
        match prev.first() {
            Some(kv) => decode(kv),
            None => Ok(DEFAULT_MAX_CONCURRENCY),
        }
    }

    async fn fleet_view(&self, group: &Name) -> Result<FleetView> {
        let keys = Keys::new(group);
        let r = self
            .read_prefixes(&[
                (keys.max(), false),
                (keys.slots(), true),
                (keys.halted_prefix(), true),
                (keys.hosts(), true),
            ])
            .await?;
        let mut r = r.into_iter();
        let mut next = || r.next().unwrap_or_default();
        let (max, slots, halted, hosts) = (next(), next(), next(), next());
        let max_concurrency = match max.first() {
            Some(kv) => decode(kv)?,
            None => DEFAULT_MAX_CONCURRENCY,
        };
        let slots = slots
            .iter()
            .map(decode)
            .collect::<Result<Vec<SlotHolder>>>()?;
        let mut halted = halted.iter().map(decode).collect::<Result<Vec<Halt>>>()?;
        halted.sort_by(|a, b| a.version.cmp(&b.version));
        let root = keys.hosts();
        let hosts = hosts
            .iter()
            .map(|kv| {
                let key = kv.key();
                let name = key.strip_prefix(&root).unwrap_or(&key);
                Ok(HostEntry {
                    host: Name::new("host name", name)?,
                    report: decode(kv)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FleetView {
            group: group.clone(),
            max_concurrency,
            slots,
            halted,
            hosts,
        })
    }
}
