//! What stage 1 of a live image prints on the serial console, read back: the
//! `ISOPROOF-LINUX` line (host name, firmware, medium, modules that failed, files and
//! structures verified and failed), one `ISOPROOF-MOUNT` line per mount, the kernel command
//! line, or `ISOPROOF-LINUX-FAIL step=…` when a step failed. The boot stage judges it against
//! the resolved config; [`LinuxReport::summary`] says briefly what Linux saw.

use super::REPORT_TAG;

/// One mount as `/proc/mounts` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mounted {
    /// The mount point, as the config names it (`/`, `/iso`).
    pub point: String,
    /// The file system type.
    pub fs_type: String,
    /// The device or source.
    pub source: String,
}

/// A live boot's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxReport {
    /// `key=value` words of the report line, in order.
    pub fields: Vec<(String, String)>,
    /// The mounts under the new root.
    pub mounts: Vec<Mounted>,
    /// `/proc/cmdline`, word by word.
    pub cmdline: Vec<String>,
}

impl LinuxReport {
    /// The failure line stage 1 printed, if any (`step=mount /iso: no medium`).
    pub fn failure(serial: &str) -> Option<&str> {
        let tag = format!("{REPORT_TAG}-FAIL");
        serial
            .lines()
            .find_map(|l| l.find(&tag).map(|i| l[i + tag.len()..].trim()))
    }

    /// Reads the report out of a serial log; `None` when there is no report line.
    pub fn find(serial: &str) -> Option<LinuxReport> {
        let prefix = format!("{REPORT_TAG} ");
        let line = serial.lines().find(|l| l.starts_with(&prefix))?;
        let fields = line[prefix.len()..]
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mounts = serial
            .lines()
            .filter_map(|l| l.strip_prefix("ISOPROOF-MOUNT "))
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some(Mounted {
                    point: w.next()?.into(),
                    fs_type: w.next()?.into(),
                    source: w.next().unwrap_or("").into(),
                })
            })
            .collect();
        let cmdline = serial
            .lines()
            .find_map(|l| l.strip_prefix("ISOPROOF-CMDLINE "))
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Some(LinuxReport {
            fields,
            mounts,
            cmdline,
        })
    }

    /// A field of the report line (`""` when missing).
    pub fn field(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether the kernel reported itself locked down (Secure Boot's integrity mode, or more).
    pub fn locked_down(&self) -> bool {
        !matches!(self.field("lockdown"), "" | "none")
    }

    /// What Linux saw, in one line: `Linux on /dev/sr0 (bios): host workstation; verified
    /// 64 files and structures, 0 failed; 0 modules failed; mounted / (tmpfs), /iso
    /// (iso9660 /dev/sr0), …`.
    pub fn summary(&self) -> String {
        let mounts: Vec<String> = self
            .mounts
            .iter()
            .map(|m| {
                if m.source.is_empty() || m.source == m.fs_type {
                    format!("{} ({})", m.point, m.fs_type)
                } else {
                    format!("{} ({} {})", m.point, m.fs_type, m.source)
                }
            })
            .collect();
        let what = match self.field("medium") {
            "netboot" => "files of the initrd and the store",
            _ => "files, modes, links and structures",
        };
        // Under UEFI: the SecureBoot variable, and the lockdown it brought.
        let firmware = match self.field("secureboot") {
            "on" => format!(
                "{}, Secure Boot on, {} mode, lockdown {}",
                self.field("firmware"),
                if self.field("setupmode") == "0" {
                    "user"
                } else {
                    "setup"
                },
                self.field("lockdown")
            ),
            "off" => format!("{}, Secure Boot off", self.field("firmware")),
            _ => self.field("firmware").to_string(),
        };
        format!(
            "Linux on {} ({firmware}): host {}; verified {} {what}, {} failed; {} modules failed; mounted {}",
            self.field("medium"),
            self.field("host"),
            self.field("verified"),
            self.field("failed"),
            self.field("modules_failed"),
            if mounts.is_empty() {
                "nothing".to_string()
            } else {
                mounts.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "[    3.1] loading\n\
        ISOPROOF-LINUX host=workstation firmware=bios medium=/dev/sr0 modules_failed=0 verified=40 failed=0 failed_paths=none\n\
        ISOPROOF-MOUNT / tmpfs tmpfs rw,mode=755\n\
        ISOPROOF-MOUNT /iso iso9660 /dev/sr0 ro\n\
        ISOPROOF-CMDLINE BOOT_IMAGE=/boot/bzImage root=LABEL=X quiet\n";

    #[test]
    fn the_report_reads_back_and_sums_up() {
        let r = LinuxReport::find(LOG).unwrap();
        assert_eq!(r.field("host"), "workstation");
        assert_eq!(r.field("nothing"), "");
        assert_eq!(r.mounts.len(), 2);
        assert_eq!(r.mounts[1].source, "/dev/sr0");
        assert_eq!(r.cmdline[2], "quiet");
        assert_eq!(
            r.summary(),
            "Linux on /dev/sr0 (bios): host workstation; verified 40 files, modes, links and structures, 0 failed; 0 modules failed; mounted / (tmpfs), /iso (iso9660 /dev/sr0)"
        );
        assert!(LinuxReport::find("SeaBIOS\n").is_none());
        assert_eq!(
            LinuxReport::failure("x\nISOPROOF-LINUX-FAIL step=mount /iso: no medium\n"),
            Some("step=mount /iso: no medium")
        );
        assert_eq!(LinuxReport::failure(LOG), None);
    }
}
