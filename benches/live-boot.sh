#!/usr/bin/env bash
# `just bench-live`: isoproof's live image and the anchor (benches/anchor-live-iso.sh: the same
# kernel booted the NixOS way, a stage 1 that only mounts) booted side by side, mode by mode,
# on one QEMU machine (the harness's q35, with the 512 MiB the anchor's GRUB needs; TCG), each
# mode ROUNDS times in alternation; then isoproof's netboot image in its two modes. Prints the median seconds from
# QEMU's start to the guest's exit, the ratio, and where isoproof's time goes: firmware and
# loader (until the kernel starts, from the guest's uptime), the kernel until /init, and each
# stage 1 step (from the uptime stage 1 prints with every step).
#
# usage: benches/live-boot.sh LIVE_ISO ANCHOR_ISO NETBOOT_DIR [ROUNDS]
set -euo pipefail
iso=$1 anchor=$2 netboot=$3 rounds=${4:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd

# boot IMAGE FIRMWARE MEDIA LOG: one boot, every serial line stamped with seconds since start.
boot() {
    local image=$1 fw=$2 media=$3 log=$4 machine=q35
    local args=(-nodefaults -no-user-config -accel tcg -m ${MEM:-512} -display none -device VGA
                -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot)
    if [ "$fw" = uefi ]; then
        cp "$vars" "$work/vars.fd"
        machine=q35,pflash0=code,pflash1=vars
        args+=(-blockdev "driver=file,filename=$code,node-name=code-file,read-only=on"
               -blockdev driver=raw,file=code-file,node-name=code,read-only=on
               -blockdev "driver=file,filename=$work/vars.fd,node-name=vars-file"
               -blockdev driver=raw,file=vars-file,node-name=vars)
    fi
    case $media in
        netboot) args+=(-netdev "user,id=net0,restrict=on,tftp=$image,bootfile=netboot.ipxe"
                        -device virtio-net-pci,netdev=net0,bootindex=0) ;;
        *) args+=(-blockdev "driver=file,filename=$image,node-name=boot-file,read-only=on"
                  -blockdev driver=raw,file=boot-file,node-name=boot,read-only=on)
           case $media in
               cdrom) args+=(-device ide-cd,drive=boot,bus=ide.0,bootindex=0) ;;
               usb) args+=(-device qemu-xhci,id=xhci -device usb-storage,bus=xhci.0,drive=boot,bootindex=0) ;;
               disk) args+=(-device virtio-blk-pci,drive=boot,bootindex=0) ;;
           esac ;;
    esac
    # (No buffering filter between QEMU and the stamps: a line is stamped when it arrives.)
    timeout 240 qemu-system-x86_64 -machine "$machine" "${args[@]}" 2>&1 |
        perl -MTime::HiRes=time -ne 'BEGIN{$|=1; $s=time} s/\r//g; printf("%.3f %s", time-$s, $_); END{printf("%.3f END\n", time-$s)}' \
        > "$log" || true
}

median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%.2f", m}'; }

# The breakdown of one isoproof log: kernel start (wall - uptime at the first stage 1 line),
# /init, then each step's length.
breakdown() {
    awk '
        / isoproof-stage1: / {
            wall = $1; up = $0; sub(/.*\(at /, "", up); sub(/ s\).*/, "", up); up += 0
            step = $0; sub(/^[0-9.]+ isoproof-stage1: /, "", step); sub(/ \(at .*/, "", step)
            if (!n++) { start = wall - up; printf "firmware+loader %.2f, kernel to /init %.2f", start, up }
            else { printf ", %s %.2f", prev, up - last }
            prev = step; last = up
        }
        / END$/ { end = $1 }
        END { if (n) printf ", %s and exit %.2f\n", prev, end - start - last }
    ' "$1"
}

printf '%-13s %9s %9s %7s   %s\n' mode isoproof anchor ratio "isoproof's time, seconds (median round)"
for mode in ${MODES:-bios-cdrom bios-usb bios-disk uefi-cdrom uefi-usb uefi-disk}; do
    fw=${mode%-*} media=${mode#*-}
    : > "$work/ours" ; : > "$work/theirs"
    for r in $(seq "$rounds"); do
        boot "$iso" "$fw" "$media" "$work/ours-$r.log"
        grep -q 'ISOPROOF-LINUX .*failed=0 ' "$work/ours-$r.log" || { echo "$mode: isoproof's boot failed" >&2; tail -5 "$work/ours-$r.log" >&2; exit 1; }
        tail -n 1 "$work/ours-$r.log" | cut -d' ' -f1 >> "$work/ours"
        if [ "$media" != usb ]; then
            boot "$anchor" "$fw" "$media" "$work/anchor-$r.log"
            grep -q 'ANCHOR host=anchorhost' "$work/anchor-$r.log" || { echo "$mode: the anchor's boot failed" >&2; tail -5 "$work/anchor-$r.log" >&2; exit 1; }
            tail -n 1 "$work/anchor-$r.log" | cut -d' ' -f1 >> "$work/theirs"
        fi
    done
    ours=$(median < "$work/ours")
    mid=$(paste -d' ' "$work/ours" <(seq "$rounds") | sort -n | awk -v k=$(( (rounds + 1) / 2 )) 'NR==k {print $2}')
    if [ -s "$work/theirs" ]; then
        theirs=$(median < "$work/theirs")
        ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "%.2fx", a / b}')
    else
        theirs=- ratio=-
    fi
    [ "$theirs" = - ] || theirs="${theirs}s"
    printf '%-13s %8ss %9s %7s   %s\n' "$mode" "$ours" "$theirs" "$ratio" "$(breakdown "$work/ours-$mid.log")"
done
for fw in bios uefi; do
    : > "$work/ours"
    for r in $(seq "$rounds"); do
        boot "$netboot" "$fw" netboot "$work/ours-$r.log"
        grep -q 'ISOPROOF-LINUX .*failed=0 ' "$work/ours-$r.log" || { echo "$fw-netboot: isoproof's boot failed" >&2; exit 1; }
        tail -n 1 "$work/ours-$r.log" | cut -d' ' -f1 >> "$work/ours"
    done
    mid=$(paste -d' ' "$work/ours" <(seq "$rounds") | sort -n | awk -v k=$(( (rounds + 1) / 2 )) 'NR==k {print $2}')
    printf '%-13s %8ss %9s %7s   %s\n' "$fw-netboot" "$(median < "$work/ours")" - - "$(breakdown "$work/ours-$mid.log")"
done
