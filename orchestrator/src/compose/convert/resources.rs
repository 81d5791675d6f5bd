//! CPU, memory, PIDs, block IO, devices and ulimits (compose's `getDeployResources`): the
//! service-level keys first, then `deploy.resources` limits and reservations over them.

use bollard_stubs::models::{
    DeviceMapping, DeviceRequest, HostConfig, ResourcesBlkioWeightDevice, ResourcesUlimits,
    ThrottleDevice,
};
use compose_spec::model::{
    Cpus, DeviceRequest as ComposeDeviceRequest, Service, ThrottleDevice as ComposeThrottle,
};

use super::{invalid, non_empty};
use crate::compose::error::Result;

/// Fills the resource part of the host config.
pub(super) fn apply(s: &Service, h: &mut HostConfig) -> Result<()> {
    h.cgroup_parent = s.cgroup_parent.clone();
    h.memory = bytes(s.mem_limit);
    h.memory_swap = bytes(s.memswap_limit);
    h.memory_swappiness = bytes(s.mem_swappiness);
    h.memory_reservation = bytes(s.mem_reservation);
    // compose always sends the flag (a pointer to the service's bool).
    h.oom_kill_disable = Some(s.oom_kill_disable);
    h.cpu_count = s.cpu_count.filter(|&n| n != 0);
    h.cpu_period = s.cpu_period.filter(|&n| n != 0);
    h.cpu_quota = s.cpu_quota.filter(|&n| n != 0);
    h.cpu_realtime_period = s.cpu_rt_period.filter(|&n| n != 0);
    h.cpu_realtime_runtime = s.cpu_rt_runtime.filter(|&n| n != 0);
    h.cpu_shares = s.cpu_shares.filter(|&n| n != 0);
    h.nano_cpus = nano_cpus(s.cpus);
    // Go multiplies the float32 by 100 before truncating; so does this.
    h.cpu_percent = s
        .cpu_percent
        .map(|c| (c.0 * 100.0) as i64)
        .filter(|&n| n != 0);
    h.cpuset_cpus = s.cpuset.clone();
    h.device_cgroup_rules = non_empty(s.device_cgroup_rules.clone());
    h.pids_limit = s.pids_limit.filter(|&n| n != 0);
    blkio(s, h)?;
    if let Some(d) = &s.deploy {
        if let Some(l) = &d.resources.limits {
            if let Some(m) = bytes(l.memory) {
                h.memory = Some(m);
            }
            if let Some(n) = nano_cpus(l.cpus) {
                h.nano_cpus = Some(n);
            }
            if let Some(p) = l.pids.filter(|&p| p > 0) {
                h.pids_limit = Some(p);
            }
        }
        // A CPU reservation is a swarm notion and PIDs are only a limit: memory and devices
        // are all an engine can reserve.
        if let Some(r) = &d.resources.reservations {
            if let Some(m) = bytes(r.memory) {
                h.memory_reservation = Some(m);
            }
            let mut requests = h.device_requests.take().unwrap_or_default();
            requests.extend(r.devices.iter().map(|d| device_request(d, Vec::new())));
            h.device_requests = non_empty(requests);
        }
    }
    devices(s, h);
    h.ulimits = non_empty(
        s.ulimits
            .iter()
            .map(|(name, u)| ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(if u.soft != 0 {
                    u.soft
                } else {
                    u.single.unwrap_or(0)
                }),
                hard: Some(if u.hard != 0 {
                    u.hard
                } else {
                    u.single.unwrap_or(0)
                }),
            })
            .collect(),
    );
    Ok(())
}

fn bytes(b: Option<compose_spec::model::UnitBytes>) -> Option<i64> {
    b.map(|b| b.0).filter(|&b| b != 0)
}

/// Go's `int64(cpus * 1e9)` on a float32.
fn nano_cpus(c: Option<Cpus>) -> Option<i64> {
    c.map(|c| (c.0 * 1e9_f32) as i64).filter(|&n| n != 0)
}

fn device_request(d: &ComposeDeviceRequest, extra_caps: Vec<String>) -> DeviceRequest {
    let mut caps = d.capabilities.clone();
    caps.extend(extra_caps);
    DeviceRequest {
        driver: d.driver.clone(),
        count: Some(d.count.unwrap_or(0)),
        device_ids: non_empty(d.device_ids.clone()),
        capabilities: Some(vec![caps]),
        options: super::non_empty_map(&d.options),
    }
}

/// `devices` (CDI names become a `cdi` device request) and `gpus`.
fn devices(s: &Service, h: &mut HostConfig) {
    let mut mappings = Vec::new();
    let mut cdi = Vec::new();
    for d in &s.devices {
        if d.source == d.target && is_cdi_name(&d.source) {
            cdi.push(d.source.clone());
            continue;
        }
        mappings.push(DeviceMapping {
            path_on_host: Some(d.source.clone()),
            path_in_container: Some(d.target.clone()),
            cgroup_permissions: Some(d.permissions.clone()),
        });
    }
    h.devices = non_empty(mappings);
    let mut requests = h.device_requests.take().unwrap_or_default();
    if !cdi.is_empty() {
        requests.push(DeviceRequest {
            driver: Some("cdi".into()),
            device_ids: Some(cdi),
            ..Default::default()
        });
    }
    requests.extend(
        s.gpus
            .iter()
            .map(|g| device_request(g, vec!["gpu".to_string()])),
    );
    h.device_requests = non_empty(requests);
}

/// A fully qualified CDI device name: `vendor.com/class=name`.
fn is_cdi_name(s: &str) -> bool {
    let Some((kind, name)) = s.split_once('=') else {
        return false;
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    !vendor.is_empty() && !class.is_empty() && !name.is_empty() && !vendor.starts_with('/')
}

fn blkio(s: &Service, h: &mut HostConfig) -> Result<()> {
    let Some(b) = &s.blkio_config else {
        return Ok(());
    };
    h.blkio_weight = (b.weight != 0).then_some(b.weight);
    h.blkio_weight_device = non_empty(
        b.weight_device
            .iter()
            .map(|w| ResourcesBlkioWeightDevice {
                path: Some(w.path.clone()),
                weight: Some(usize::from(w.weight)),
            })
            .collect(),
    );
    let throttle = |field: &str, list: &[ComposeThrottle]| -> Result<Option<Vec<ThrottleDevice>>> {
        let out = list
            .iter()
            .map(|t| {
                if t.rate.0 < 0 {
                    return Err(invalid(
                        s,
                        field,
                        format!("negative rate for device {}", t.path),
                    ));
                }
                Ok(ThrottleDevice {
                    path: Some(t.path.clone()),
                    rate: Some(t.rate.0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(non_empty(out))
    };
    h.blkio_device_read_bps = throttle("blkio_config.device_read_bps", &b.device_read_bps)?;
    h.blkio_device_read_iops = throttle("blkio_config.device_read_iops", &b.device_read_iops)?;
    h.blkio_device_write_bps = throttle("blkio_config.device_write_bps", &b.device_write_bps)?;
    h.blkio_device_write_iops = throttle("blkio_config.device_write_iops", &b.device_write_iops)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn service_level_resources() {
        let p = project(
            "services:\n  web:\n    image: x\n    mem_limit: 512m\n    memswap_limit: 1g\n    mem_reservation: 128m\n    cpus: 1.5\n    cpu_shares: 512\n    cpu_quota: 50000\n    cpu_period: 100000\n    cpuset: 0-1\n    pids_limit: 100\n    oom_kill_disable: true\n    cgroup_parent: berth-test\n    ulimits:\n      nproc: 65535\n      nofile: {soft: 1024, hard: 2048}\n    devices: ['/dev/null:/dev/mynull:r', 'vendor.com/gpu=0']\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(h.memory, Some(512 << 20));
        assert_eq!(h.memory_swap, Some(1 << 30));
        assert_eq!(h.memory_reservation, Some(128 << 20));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.cpu_shares, Some(512));
        assert_eq!(h.cpu_quota, Some(50000));
        assert_eq!(h.cpu_period, Some(100000));
        assert_eq!(h.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.oom_kill_disable, Some(true));
        assert_eq!(h.cgroup_parent.as_deref(), Some("berth-test"));
        let u = h.ulimits.unwrap();
        assert_eq!(u[0].name.as_deref(), Some("nproc"));
        assert_eq!((u[0].soft, u[0].hard), (Some(65535), Some(65535)));
        assert_eq!((u[1].soft, u[1].hard), (Some(1024), Some(2048)));
        let d = h.devices.unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path_on_host.as_deref(), Some("/dev/null"));
        assert_eq!(d[0].path_in_container.as_deref(), Some("/dev/mynull"));
        assert_eq!(d[0].cgroup_permissions.as_deref(), Some("r"));
        let r = h.device_requests.unwrap();
        assert_eq!(r[0].driver.as_deref(), Some("cdi"));
        assert_eq!(r[0].device_ids, Some(vec!["vendor.com/gpu=0".to_string()]));
    }

    #[test]
    fn deploy_resources_override_service_keys() {
        let p = project(
            "services:\n  web:\n    image: x\n    mem_limit: 512m\n    cpus: 2\n    pids_limit: 10\n    deploy:\n      resources:\n        limits:\n          cpus: '0.5'\n          memory: 256M\n          pids: 50\n        reservations:\n          cpus: '0.25'\n          memory: 64M\n          devices:\n            - capabilities: [gpu]\n              count: 1\n              driver: nvidia\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(h.memory, Some(256 << 20));
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(h.pids_limit, Some(50));
        assert_eq!(h.memory_reservation, Some(64 << 20));
        let r = h.device_requests.unwrap();
        assert_eq!(r[0].driver.as_deref(), Some("nvidia"));
        assert_eq!(r[0].count, Some(1));
        assert_eq!(r[0].capabilities, Some(vec![vec!["gpu".to_string()]]));
    }

    #[test]
    fn blkio_config() {
        let p = project(
            "services:\n  web:\n    image: x\n    blkio_config:\n      weight: 300\n      weight_device:\n        - {path: /dev/sda, weight: 400}\n      device_read_bps:\n        - {path: /dev/sda, rate: 12mb}\n      device_write_iops:\n        - {path: /dev/sda, rate: 30}\n",
        );
        let h = convert(&p, "web").body.host_config.unwrap();
        assert_eq!(h.blkio_weight, Some(300));
        assert_eq!(h.blkio_weight_device.unwrap()[0].weight, Some(400));
        assert_eq!(h.blkio_device_read_bps.unwrap()[0].rate, Some(12 << 20));
        assert_eq!(h.blkio_device_write_iops.unwrap()[0].rate, Some(30));
        assert!(h.blkio_device_write_bps.is_none());
    }
}
