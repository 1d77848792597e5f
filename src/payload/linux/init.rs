//! Stage 1, the initramfs's `/init` (a busybox shell script), generated from the resolved
//! config as NixOS's stage-1 is: load the modules, find the medium by `root=LABEL=` (a
//! netboot image has none: its store came in the initrd), mount every `fileSystems` entry
//! stage 1 needs in mount-point order under `/mnt-root` (with its `fsType`, `device` and
//! `options`; a relative device is relative to `/mnt-root`, as NixOS's netboot
//! `../nix-store.squashfs` is), set the host name from `/etc/hostname`, verify every file
//! (through Rock Ridge, through Joliet and the raw structures of an ISO; the initrd's own
//! files of a netboot image) and the store through its overlay, and print one report of
//! what Linux saw on COM1 before leaving QEMU through `isa-debug-exit`.
//!
//! Every step announces itself (`isoproof-stage1: STEP`), and a failed step ends the run
//! with `ISOPROOF-LINUX-FAIL step=STEP: why`, so a boot failure says which step failed.

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
    /// Modules the mount needs (its file system's, `loop`'s).
    pub modules: Vec<String>,
}

/// Where the live system comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Medium {
    /// An ISO image with this volume label, on a CD-ROM, USB stick or disk.
    Label(String),
    /// The network: kernel and initrd loaded by iPXE, the store appended to the initrd.
    Netboot,
}

/// Finds the ISO by its label: coldplug until a block device shows it, then `/dev/root`.
const FIND_MEDIUM: &str = concat!(
    "step \"find LABEL=$LABEL\"\n",
    "MEDIUM=\n",
    "i=0\n",
    "SEEN=' '\n",
    "while [ $i -lt 600 ]; do\n",
    "  # Coldplug: the drivers of every device not seen before (and of the devices those\n",
    "  # drivers bring: disks behind a controller), until the medium shows its label.\n",
    "  NEW=\n",
    "  for f in /sys/bus/*/devices/*/modalias; do\n",
    "    read -r a < \"$f\" 2>/dev/null || continue\n",
    "    case \"$SEEN\" in *\" $a \"*) continue;; esac\n",
    "    SEEN=\"$SEEN$a \"; NEW=\"$NEW $a\"\n",
    "  done\n",
    "  [ -n \"$NEW\" ] && modprobe -a -q $NEW 2>/dev/null\n",
    "  MEDIUM=$(findfs \"LABEL=$LABEL\" 2>/dev/null) && [ -n \"$MEDIUM\" ] && break\n",
    "  i=$((i+1)); sleep 0.05\n",
    "done\n",
    "[ -n \"$MEDIUM\" ] || fail \"no block device has the label $LABEL\"\n",
    "ln -sf \"$MEDIUM\" /dev/root\n",
);

/// Counts what verifies: `check DIR MANIFEST PREFIX` runs `sha256sum -c` in DIR and names
/// every failure as PREFIX + path.
const VERIFY_COMMON: &str = concat!(
    "OK=0; BAD=0; BADLIST=\n",
    "check() { # DIR MANIFEST: sha256sum -c, counting and naming failures\n",
    "  [ -f \"$2\" ] || return 0\n",
    "  n=$(grep -c . \"$2\")\n",
    "  f=$(cd \"$1\" && sha256sum -c \"$2\" 2>/dev/null | grep '^\\./.*: ' | grep -v ': OK$' | sed 's/: [^:]*$//' | tr '\\n' ' ')\n",
    "  for x in $f; do BAD=$((BAD+1)); BADLIST=\"$BADLIST$3${x#.}\"; BADLIST=\"$BADLIST,\"; n=$((n-1)); done\n",
    "  OK=$((OK+n))\n",
    "}\n",
    "missing() { # PREFIX COUNT: the lines of /tmp/want that /tmp/got lacks are failures\n",
    "  n=$2\n",
    "  grep -Fxv -f /tmp/got /tmp/want > /tmp/bad\n",
    "  while read -r _ x; do BAD=$((BAD+1)); BADLIST=\"$BADLIST$1${x#.},\"; n=$((n-1)); done < /tmp/bad\n",
    "  OK=$((OK+n))\n",
    "}\n",
);

/// An ISO: every file through Rock Ridge (bytes, modes, links) and Joliet, the store, and
/// every structure read from the raw disk.
const VERIFY_ISO: &str = concat!(
    "ISO=/mnt-root/iso\n",
    "# The medium as mounted by the config, or mounted here when no entry mounts it.\n",
    "if ! [ -f \"$ISO$V/iso.sha256\" ]; then ISO=/run/medium; mkdir -p $ISO; mount -t iso9660 -o ro \"$MEDIUM\" $ISO || fail \"mount the medium\"; fi\n",
    "step hostname\n",
    "hostname \"$(cat \"$ISO/etc/hostname\")\" || fail \"no /etc/hostname on the medium\"\n",
    "step \"verify Rock Ridge\"\n",
    "check \"$ISO\" \"$ISO$V/iso.sha256\" rr:\n",
    "# Modes: one stat over the tree against the manifest, line by line (a fork per file\n",
    "# costs more than the hashing under emulation).\n",
    "sed -n 's/^mode \\([0-7]*\\) \\(.*\\)$/\\1 .\\2/p' \"$ISO$V/iso.meta\" > /tmp/want\n",
    "(cd \"$ISO\" && find . -exec stat -c '%a %n' {} +) > /tmp/got\n",
    "missing mode: \"$(grep -c . /tmp/want)\"\n",
    "while read kind mode path target; do\n",
    "  p=\"$ISO$path\"\n",
    "  case $kind in\n",
    "    link) [ \"$(readlink \"$p\")\" = \"$target\" ] && OK=$((OK+1)) || { BAD=$((BAD+1)); BADLIST=\"${BADLIST}link:$path,\"; };;\n",
    "    tail64) [ \"$(dd if=\"$p\" bs=64 skip=1 2>/dev/null | sha256sum | cut -d' ' -f1)\" = \"$mode\" ] && OK=$((OK+1)) || { BAD=$((BAD+1)); BADLIST=\"${BADLIST}rr:$path,\"; };;\n",
    "  esac\n",
    "done < \"$ISO$V/iso.meta\"\n",
    "step \"verify Joliet\"\n",
    "mkdir -p /run/joliet\n",
    "mount -t iso9660 -o ro,norock \"$MEDIUM\" /run/joliet || fail \"mount -o norock (Joliet)\"\n",
    "cp \"$ISO$V/joliet.list\" /tmp/want\n",
    "(cd /run/joliet && find . -type f -exec stat -c '%s %n' {} +) > /tmp/got\n",
    "missing joliet: \"$(grep -c . /tmp/want)\"\n",
    "step \"verify store\"\n",
    "if [ -d /mnt-root/nix/store ]; then check /mnt-root/nix/store \"$ISO$V/store.sha256\" store:; fi\n",
    "step \"verify structures\"\n",
    "# Every extent that is not file data, read from the whole disk as firmware reads it\n",
    "# (one dd each), then hashed by one sha256sum.\n",
    "mkdir -p /run/raw; : > /run/raw.sums; i=0\n",
    "while read off len sum name; do\n",
    "  i=$((i+1))\n",
    "  dd if=\"$MEDIUM\" of=/run/raw/$i iflag=skip_bytes,count_bytes,fullblock bs=1M skip=\"$off\" count=\"$len\" 2>/dev/null\n",
    "  echo \"$sum  /run/raw/$i\" >> /run/raw.sums; echo \"$name\" > /run/raw/$i.name\n",
    "done < \"$ISO$V/blocks.sha256\"\n",
    "n=$i\n",
    "for x in $(sha256sum -c /run/raw.sums 2>/dev/null | grep -v ': OK$' | sed 's/: [^:]*$//'); do\n",
    "  BAD=$((BAD+1)); BADLIST=\"${BADLIST}raw:$(cat $x.name),\"; n=$((n-1))\n",
    "done\n",
    "OK=$((OK+n)); rm -rf /run/raw\n",

);

/// A netboot image: the initrd's own files (the generated ones and the appended
/// `/nix-store.squashfs`, whose digests the first archive carries) and the store through
/// its overlay, file by file.
const VERIFY_NETBOOT: &str = concat!(
    "MEDIUM=netboot\n",
    "step hostname\n",
    "hostname \"$(cat /etc/hostname)\" || fail \"no /etc/hostname in the initrd\"\n",
    "step \"verify initrd\"\n",
    "[ -f \"$V/initrd.sha256\" ] || fail \"no $V/initrd.sha256 in the initrd\"\n",
    "check / \"$V/initrd.sha256\" initrd:\n",
    "step \"verify store\"\n",
    "[ -d /mnt-root/nix/store ] || fail \"no /nix/store was mounted\"\n",
    "check /mnt-root/nix/store \"$V/store.sha256\" store:\n",
);

/// Quotes a word for the shell: single quotes, with `'` as `'\''`.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `/init` script: `always` are the modules loaded first (`boot.initrd.kernelModules`);
/// every other module is loaded by busybox `modprobe` when a device that needs it appears
/// (the modaliases of `/sys`, as udev's coldplug does) or when a mount needs its file system.
pub fn script(always: &[String], medium: &Medium, mounts: &[Mount]) -> String {
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
        "# isa-debug-exit; a kernel locked down (Secure Boot) forbids /dev/port: power off.\n",
        "leave() { printf \"$1\" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null || poweroff -f; sleep 5; }\n",
        "STEP=start\n",
        "step() { STEP=\"$1\"; out \"isoproof-stage1: $1 (at $(cut -d' ' -f1 /proc/uptime) s)\"; }\n",
        "fail() { out \"",
    ));
    s.push_str(REPORT_TAG);
    s.push_str(concat!(
        "-FAIL step=$STEP: $*\"; leave '\\021'; exit 1; }\n",
        "echo /bin/modprobe > /proc/sys/kernel/modprobe\n",
        "step modules\n",
        "MODFAIL=0\n",
        "need() { for m in \"$@\"; do modprobe \"$m\" 2>/tmp/mp.err || { MODFAIL=$((MODFAIL+1)); out \"modprobe $m: $(cat /tmp/mp.err)\"; }; done; }\n",
    ));
    if !always.is_empty() {
        let names: Vec<String> = always.iter().map(|m| q(m)).collect();
        s.push_str(&format!("need {}\n", names.join(" ")));
    }
    if let Medium::Label(label) = medium {
        s.push_str(&format!("LABEL={}\n", q(label)));
        s.push_str(FIND_MEDIUM);
    }
    s.push_str(concat!(
        "FW=bios; [ -d /sys/firmware/efi ] && FW=uefi\n",
        "# Secure Boot as the firmware says (SecureBoot, SetupMode: a 4-byte header, one byte),\n",
        "# and the kernel lockdown it brings.\n",
        "SB=none; SETUP=none; LOCK=none\n",
        "if [ $FW = uefi ]; then\n",
        "  modprobe -q efivarfs; mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null\n",
        "  g=8be4df61-93ca-11d2-aa0d-00e098032b8c\n",
        "  var() { set -- $(od -An -t u1 \"/sys/firmware/efi/efivars/$1-$g\" 2>/dev/null); echo \"$5\"; }\n",
        "  b=$(var SecureBoot); SETUP=$(var SetupMode)\n",
        "  case \"$b\" in 1) SB=on;; *) SB=off;; esac\n",
        "fi\n",
        "mount -t securityfs securityfs /sys/kernel/security 2>/dev/null\n",
        "l=$(cat /sys/kernel/security/lockdown 2>/dev/null) && LOCK=$(echo \"$l\" | sed 's/.*\\[\\(.*\\)\\].*/\\1/')\n",
        "# A device that is a path names a file of the new root (the squashfs on the medium,\n",
        "# or netboot's ../nix-store.squashfs: the initrd's own, from /mnt-root).\n",
        "dev() { case \"$1\" in /dev/*) echo \"$1\";; /*) echo \"/mnt-root$1\";; */*) echo \"/mnt-root/$1\";; *) echo \"$1\";; esac; }\n",
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
        for m in &m.modules {
            s.push_str(&format!("modprobe -q {} 2>/dev/null\n", q(m)));
        }
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
    s.push_str(&format!("V={}\n", q(VERIFY_DIR)));
    s.push_str(VERIFY_COMMON);
    s.push_str(match medium {
        Medium::Label(_) => VERIFY_ISO,
        Medium::Netboot => VERIFY_NETBOOT,
    });
    s.push_str(concat!("step report\n", "out \"",));
    s.push_str(REPORT_TAG);
    s.push_str(concat!(
        " host=$(hostname) firmware=$FW secureboot=$SB setupmode=${SETUP:-none} lockdown=${LOCK:-none} medium=$MEDIUM modules_failed=$MODFAIL verified=$OK failed=$BAD failed_paths=${BADLIST:-none}\"\n",
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
            &["loop".into()],
            &Medium::Label("NIXOS_ISO".into()),
            &[
                Mount {
                    point: "/".into(),
                    fs_type: "tmpfs".into(),
                    device: None,
                    options: vec!["mode=0755".into()],
                    modules: vec![],
                },
                Mount {
                    point: "/it's".into(),
                    fs_type: "iso9660".into(),
                    device: Some("/dev/root".into()),
                    options: vec![],
                    modules: vec!["isofs".into()],
                },
            ],
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("need 'loop'\n"));
        assert!(s.contains("modprobe -q 'isofs'"));
        assert!(s.contains(
            "mount -t 'tmpfs' -o \"$(opts 'mode=0755')\" \"$(dev 'tmpfs')\" '/mnt-root'"
        ));
        assert!(s.contains("'/mnt-root/it'\\''s'"));
        assert!(s.contains("LABEL='NIXOS_ISO'"));
    }

    #[test]
    fn a_netboot_stage_1_finds_no_medium_and_verifies_the_initrd_and_store() {
        let s = script(
            &[],
            &Medium::Netboot,
            &[Mount {
                point: "/nix/.ro-store".into(),
                fs_type: "squashfs".into(),
                device: Some("../nix-store.squashfs".into()),
                options: vec!["loop".into()],
                modules: vec![],
            }],
        );
        assert!(!s.contains("findfs"));
        assert!(!s.contains("verify Joliet"));
        assert!(s.contains("MEDIUM=netboot\n"));
        assert!(s.contains("check / \"$V/initrd.sha256\" initrd:\n"));
        assert!(s.contains("check /mnt-root/nix/store \"$V/store.sha256\" store:\n"));
        // `../nix-store.squashfs` is read from /mnt-root, as NixOS's stage 1 reads it.
        assert!(s.contains("*/*) echo \"/mnt-root/$1\";;"));
        let iso = script(&[], &Medium::Label("L".into()), &[]);
        assert!(iso.contains("findfs") && iso.contains("verify structures"));
        assert!(!iso.contains("initrd.sha256"));
    }
}
