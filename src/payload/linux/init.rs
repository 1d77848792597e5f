//! Stage 1, the initramfs's `/init` (a busybox shell script), generated from the resolved
//! config as NixOS's stage-1 is: load the modules, find the medium by `root=LABEL=`, mount
//! every `fileSystems` entry in mount-point order under `/mnt-root` (with its `fsType`,
//! `device` and `options`), set the host name from the medium's `/etc/hostname`, verify
//! every file through Rock Ridge, through Joliet and through the store overlay, and print
//! one report of what Linux saw on COM1 before leaving QEMU through `isa-debug-exit`.
//!
//! Every step announces itself (`isoproof-stage1: STEP`), and a failed step ends the run
//! with `ISOPROOF-LINUX-FAIL step=STEP: why`, so a boot failure says which step failed.

use super::modules::Load;
use super::{REPORT_TAG, VERIFY_DIR};

/// One `fileSystems` entry as stage 1 mounts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The mount point (`/`, `/iso`, `/nix/.ro-store`).
    pub point: String,
    /// `fsType`.
    pub fs_type: String,
    /// `device` (`None`: the fs type is the source, as for tmpfs).
    pub device: Option<String>,
    /// `options`.
    pub options: Vec<String>,
}

/// Quotes a word for the shell: single quotes, with `'` as `'\''`.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `/init` script.
pub fn script(version: &str, loads: &[Load], label: &str, mounts: &[Mount]) -> String {
    let mut s = String::new();
    s.push_str(concat!(
        "#!/bin/sh\n",
        "# isoproof stage 1, generated from the resolved config.\n",
        "/bin/busybox mkdir -p /bin /proc /sys /dev /run /tmp /mnt-root\n",
        "/bin/busybox --install -s /bin\n",
        "export PATH=/bin\n",
        "mount -t proc proc /proc\n",
        "mount -t sysfs sysfs /sys\n",
        "mount -t devtmpfs devtmpfs /dev\n",
        "out() { echo \"$*\" > /dev/ttyS0; }\n",
        "leave() { printf \"$1\" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null; sleep 5; }\n",
        "STEP=start\n",
        "step() { STEP=\"$1\"; out \"isoproof-stage1: $1\"; }\n",
        "fail() { out \"",
    ));
    s.push_str(REPORT_TAG);
    s.push_str(concat!(
        "-FAIL step=$STEP: $*\"; leave '\\021'; exit 1; }\n",
        "step modules\n",
        "MODFAIL=0\n",
    ));
    for l in loads {
        let path = q(&format!("/lib/modules/{version}/{}", l.file));
        if l.optional {
            s.push_str(&format!("insmod {path} 2>/dev/null || true\n"));
        } else {
            s.push_str(&format!(
                "insmod {path} 2>/tmp/insmod.err || {{ grep -q 'File exists' /tmp/insmod.err || {{ MODFAIL=$((MODFAIL+1)); out \"insmod {}: $(cat /tmp/insmod.err)\"; }}; }}\n",
                l.file
            ));
        }
    }
    s.push_str(&format!("LABEL={}\n", q(label)));
    s.push_str(concat!(
        "step \"find LABEL=$LABEL\"\n",
        "MEDIUM=\n",
        "i=0\n",
        "while [ $i -lt 600 ]; do\n",
        "  MEDIUM=$(findfs \"LABEL=$LABEL\" 2>/dev/null) && [ -n \"$MEDIUM\" ] && break\n",
        "  i=$((i+1)); sleep 0.05\n",
        "done\n",
        "[ -n \"$MEDIUM\" ] || fail \"no block device has the label $LABEL\"\n",
        "ln -sf \"$MEDIUM\" /dev/root\n",
        "FW=bios; [ -d /sys/firmware/efi ] && FW=uefi\n",
        "# A device under / names a file of the new root (the squashfs on the medium).\n",
        "dev() { case \"$1\" in /dev/*) echo \"$1\";; /*) echo \"/mnt-root$1\";; *) echo \"$1\";; esac; }\n",
        "opts() {\n",
        "  r=\n",
        "  for o in $(echo \"$1\" | tr ',' ' '); do\n",
        "    case \"$o\" in\n",
        "      lowerdir=/*|upperdir=/*|workdir=/*) k=${o%%=*}; v=${o#*=}; mkdir -p \"/mnt-root$v\"; o=\"$k=/mnt-root$v\";;\n",
        "    esac\n",
        "    r=\"${r:+$r,}$o\"\n",
        "  done\n",
        "  echo \"$r\"\n",
        "}\n",
    ));
    for m in mounts {
        let target = if m.point == "/" {
            "/mnt-root".to_string()
        } else {
            format!("/mnt-root{}", m.point)
        };
        let device = m.device.clone().unwrap_or_else(|| m.fs_type.clone());
        let options = if m.options.is_empty() {
            "defaults".to_string()
        } else {
            m.options.join(",")
        };
        s.push_str(&format!(
            "step {}\nmkdir -p {t}\nmount -t {} -o \"$(opts {})\" \"$(dev {})\" {t} 2>/tmp/mount.err || fail \"mount -t {} {} {}: $(cat /tmp/mount.err)\"\n",
            q(&format!("mount {}", m.point)),
            q(&m.fs_type),
            q(&options),
            q(&device),
            m.fs_type.replace(['"', '$', '`', '\\'], "_"),
            device.replace(['"', '$', '`', '\\'], "_"),
            m.point.replace(['"', '$', '`', '\\'], "_"),
            t = q(&target),
        ));
    }
    s.push_str(&format!("V={}\nISO=/mnt-root/iso\n", q(VERIFY_DIR)));
    s.push_str(concat!(
        "# The medium as mounted by the config, or mounted here when no entry mounts it.\n",
        "if ! [ -f \"$ISO$V/iso.sha256\" ]; then ISO=/run/medium; mkdir -p $ISO; mount -t iso9660 -o ro \"$MEDIUM\" $ISO || fail \"mount the medium\"; fi\n",
        "step hostname\n",
        "hostname \"$(cat \"$ISO/etc/hostname\")\" || fail \"no /etc/hostname on the medium\"\n",
        "OK=0; BAD=0; BADLIST=\n",
        "check() { # DIR MANIFEST: sha256sum -c, counting and naming failures\n",
        "  [ -f \"$2\" ] || return 0\n",
        "  n=$(grep -c . \"$2\")\n",
        "  f=$(cd \"$1\" && sha256sum -c \"$2\" 2>/dev/null | grep '^\\./.*: ' | grep -v ': OK$' | sed 's/: [^:]*$//' | tr '\\n' ' ')\n",
        "  for x in $f; do BAD=$((BAD+1)); BADLIST=\"$BADLIST$3${x#.}\"; BADLIST=\"$BADLIST,\"; n=$((n-1)); done\n",
        "  OK=$((OK+n))\n",
        "}\n",
        "step \"verify Rock Ridge\"\n",
        "check \"$ISO\" \"$ISO$V/iso.sha256\" rr:\n",
        "while read kind mode path target; do\n",
        "  p=\"$ISO$path\"\n",
        "  case $kind in\n",
        "    mode) [ \"$(stat -c %a \"$p\" 2>/dev/null)\" = \"$mode\" ] && OK=$((OK+1)) || { BAD=$((BAD+1)); BADLIST=\"${BADLIST}mode:$path,\"; };;\n",
        "    link) [ \"$(readlink \"$p\")\" = \"$target\" ] && OK=$((OK+1)) || { BAD=$((BAD+1)); BADLIST=\"${BADLIST}link:$path,\"; };;\n",
        "    tail64) [ \"$(dd if=\"$p\" bs=64 skip=1 2>/dev/null | sha256sum | cut -d' ' -f1)\" = \"$mode\" ] && OK=$((OK+1)) || { BAD=$((BAD+1)); BADLIST=\"${BADLIST}rr:$path,\"; };;\n",
        "  esac\n",
        "done < \"$ISO$V/iso.meta\"\n",
        "step \"verify Joliet\"\n",
        "mkdir -p /run/joliet\n",
        "mount -t iso9660 -o ro,norock \"$MEDIUM\" /run/joliet || fail \"mount -o norock (Joliet)\"\n",
        "check /run/joliet \"$ISO$V/joliet.sha256\" joliet:\n",
        "step \"verify store\"\n",
        "if [ -d /mnt-root/nix/store ]; then check /mnt-root/nix/store \"$ISO$V/store.sha256\" store:; fi\n",
        "step report\n",
        "out \"",
    ));
    s.push_str(REPORT_TAG);
    s.push_str(concat!(
        " host=$(hostname) firmware=$FW medium=$MEDIUM modules_failed=$MODFAIL verified=$OK failed=$BAD failed_paths=${BADLIST:-none}\"\n",
        "grep ' /mnt-root' /proc/mounts | while read src point type options rest; do\n",
        "  p=${point#/mnt-root}; out \"ISOPROOF-MOUNT ${p:-/} $type $src $options\"\n",
        "done\n",
        "out \"ISOPROOF-CMDLINE $(cat /proc/cmdline)\"\n",
        "out \"ISOPROOF-END\"\n",
        "if [ $BAD -eq 0 ] && [ $MODFAIL -eq 0 ]; then leave '\\020'; else leave '\\021'; fi\n",
        "exit 1\n",
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_follow_the_config_and_words_are_quoted() {
        let s = script(
            "6.1.0-57-amd64",
            &[Load {
                file: "kernel/fs/isofs/isofs.ko".into(),
                optional: false,
            }],
            "NIXOS_ISO",
            &[
                Mount {
                    point: "/".into(),
                    fs_type: "tmpfs".into(),
                    device: None,
                    options: vec!["mode=0755".into()],
                },
                Mount {
                    point: "/it's".into(),
                    fs_type: "iso9660".into(),
                    device: Some("/dev/root".into()),
                    options: vec![],
                },
            ],
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("insmod '/lib/modules/6.1.0-57-amd64/kernel/fs/isofs/isofs.ko'"));
        assert!(s.contains(
            "mount -t 'tmpfs' -o \"$(opts 'mode=0755')\" \"$(dev 'tmpfs')\" '/mnt-root'"
        ));
        assert!(s.contains("'/mnt-root/it'\\''s'"));
        assert!(s.contains("LABEL='NIXOS_ISO'"));
    }
}
