//! Device access rules, normalised from the OCI form for both the v1 `devices` controller and
//! the v2 eBPF filter.
//!
//! Semantics (the same on v1 and v2): rules apply in order and, for each access bit, the last
//! rule that matches a device decides; a device no rule matches is denied. One known v1
//! difference: while a v1 cgroup allows everything, an `allow` rule cannot re-open a device
//! that an earlier wildcard `deny` closed (the kernel only removes exact exceptions).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::CgroupError;

/// Read access (`r`), as in `BPF_DEVCG_ACC_READ`.
pub(crate) const ACC_READ: u32 = 2;
/// Write access (`w`), as in `BPF_DEVCG_ACC_WRITE`.
pub(crate) const ACC_WRITE: u32 = 4;
/// mknod (`m`), as in `BPF_DEVCG_ACC_MKNOD`.
pub(crate) const ACC_MKNOD: u32 = 1;
const ACC_ALL: u32 = ACC_READ | ACC_WRITE | ACC_MKNOD;

/// Which devices a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Char,
    Block,
}

/// One normalised rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` matches any major.
    pub major: Option<u32>,
    /// `None` matches any minor.
    pub minor: Option<u32>,
    /// A set of `ACC_*` bits, never empty.
    pub access: u32,
}

impl Rule {
    /// True when the rule matches every device and every access.
    pub fn is_total(&self) -> bool {
        self.kind == Kind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == ACC_ALL
    }

    /// The lines to write to v1 `devices.allow` or `devices.deny`. The kernel reads a bare
    /// `a` as "everything" whatever follows it, so a partial `a` rule is spelt as `c` + `b`.
    pub fn v1_lines(&self) -> Vec<String> {
        if self.is_total() {
            return vec!["a".to_owned()];
        }
        let kinds: &[char] = match self.kind {
            Kind::All => &['c', 'b'],
            Kind::Char => &['c'],
            Kind::Block => &['b'],
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        kinds
            .iter()
            .map(|k| {
                format!(
                    "{k} {}:{} {}",
                    num(self.major),
                    num(self.minor),
                    access_string(self.access)
                )
            })
            .collect()
    }
}

fn access_string(access: u32) -> String {
    [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
        .iter()
        .filter(|(bit, _)| access & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Normalises OCI device rules. FIFO (`p`) rules are dropped: the device cgroup never
/// controls FIFOs. `u` is a character device.
pub(crate) fn normalise(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::P => continue,
        };
        out.push(Rule {
            allow: rule.allow(),
            kind,
            major: device_number(i, "major", rule.major())?,
            minor: device_number(i, "minor", rule.minor())?,
            access: parse_access(i, rule.access().as_deref())?,
        });
    }
    Ok(out)
}

/// A negative number is a wildcard (the `-1` convention of Go runtimes).
fn device_number(i: usize, what: &str, n: Option<i64>) -> Result<Option<u32>, CgroupError> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::InvalidResource {
                setting: format!("devices[{i}].{what}"),
                reason: format!("{n} is out of range"),
            }),
    }
}

/// Missing or empty access means `rwm`.
fn parse_access(i: usize, access: Option<&str>) -> Result<u32, CgroupError> {
    let access = access.filter(|a| !a.is_empty()).unwrap_or("rwm");
    access.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        _ => Err(CgroupError::InvalidResource {
            setting: format!("devices[{i}].access"),
            reason: format!("{access:?} may only contain r, w and m"),
        }),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    pub(crate) fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    #[test]
    fn v1_lines() {
        let rules = normalise(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            rule(true, LinuxDeviceType::U, Some(136), Some(-1), "rw"),
            rule(true, LinuxDeviceType::B, None, None, "m"),
            rule(false, LinuxDeviceType::A, Some(10), None, "r"),
            rule(true, LinuxDeviceType::P, None, None, "rwm"),
        ])
        .unwrap();
        let lines: Vec<Vec<String>> = rules.iter().map(Rule::v1_lines).collect();
        assert_eq!(
            lines,
            vec![
                vec!["a".to_owned()],
                vec!["c 1:3 rwm".to_owned()],
                vec!["c 136:* rw".to_owned()],
                vec!["b *:* m".to_owned()],
                vec!["c 10:* r".to_owned(), "b 10:* r".to_owned()],
            ]
        );
        assert!(!rules[0].allow && rules[1].allow);
    }

    #[test]
    fn missing_access_means_rwm_and_bad_access_is_refused() {
        let mut r = rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm");
        r.set_access(None);
        assert_eq!(normalise(&[r]).unwrap()[0].access, ACC_ALL);
        let bad = rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwx");
        assert!(matches!(
            normalise(&[bad]),
            Err(CgroupError::InvalidResource { .. })
        ));
        let huge = rule(true, LinuxDeviceType::C, Some(1 << 40), Some(3), "r");
        assert!(matches!(
            normalise(&[huge]),
            Err(CgroupError::InvalidResource { .. })
        ));
    }
}
