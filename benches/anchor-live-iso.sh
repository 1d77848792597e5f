#!/usr/bin/env bash
# The anchor of `just bench-live`: a live ISO made the way NixOS makes one — xorriso with
# ISOLINUX for BIOS, a standalone GRUB for UEFI on an appended FAT ESP, a hybrid MBR and GPT —
# from the same kernel, modules and busybox as isoproof's live scenarios, with a stage 1 that
# only loads the CD and disk drivers, mounts the medium and reports. Booted under QEMU with
# TCG in four modes; prints the seconds from QEMU's start to the guest's power-off.
#
# usage: benches/anchor-live-iso.sh PAYLOAD_ROOT WORKDIR
# (PAYLOAD_ROOT is what `isoproof payload fetch` makes: payload/root.)
set -euo pipefail

payload=$(cd "${1:?usage: anchor-live-iso.sh PAYLOAD_ROOT WORKDIR}" && pwd)
work=${2:?usage: anchor-live-iso.sh PAYLOAD_ROOT WORKDIR}
mkdir -p "$work"
cd "$work"

# The tools NixOS's image build uses, and QEMU with OVMF.
missing=()
for tool in xorriso mkfs.vfat mcopy grub-mkstandalone qemu-system-x86_64 cpio; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing for: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        xorriso dosfstools mtools grub-efi-amd64-bin qemu-system-x86 ovmf cpio >/dev/null
fi

kver=$(basename "$(ls -d "$payload"/lib/modules/*/ | head -n 1)")
mods="cdrom scsi_common scsi_mod sr_mod isofs virtio_ring virtio virtio_pci_modern_dev \
virtio_pci_legacy_dev virtio_pci virtio_blk libata libahci ahci ata_piix"

# Stage 1: busybox, the drivers, an /init that mounts the medium and powers off.
rm -rf initrd iso
mkdir -p initrd/bin initrd/dev initrd/proc initrd/sys initrd/mnt initrd/lib/modules \
    iso/isolinux iso/boot iso/etc
cp "$payload/bin/busybox" initrd/bin/busybox
for m in $mods; do
    ko=$(find "$payload/lib/modules/$kver" -name "$m.ko" | head -n 1)
    [ -n "$ko" ] || { echo "no module $m in $payload" >&2; exit 1; }
    cp "$ko" initrd/lib/modules/
done
{
    echo '#!/bin/busybox sh'
    echo '/bin/busybox --install -s /bin'
    echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
    echo "for m in $mods; do insmod /lib/modules/\$m.ko 2>/dev/null; done"
    echo 'n=0'
    echo 'while [ $n -lt 25 ]; do'
    echo '    for d in /dev/sr0 /dev/vda /dev/sda; do'
    echo '        [ -b $d ] && mount -t iso9660 -o ro $d /mnt 2>/dev/null && break 2'
    echo '    done'
    echo '    n=$((n + 1)); sleep 0.2'
    echo 'done'
    echo 'echo "ANCHOR host=$(cat /mnt/etc/hostname 2>/dev/null)" > /dev/ttyS0'
    echo 'poweroff -f'
} > initrd/init
chmod 755 initrd/init
(cd initrd && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n) > iso/boot/initrd

cp "$payload/boot/vmlinuz-$kver" iso/boot/bzImage
echo anchorhost > iso/etc/hostname
cp "$payload/usr/lib/ISOLINUX/isolinux.bin" "$payload/usr/lib/syslinux/modules/bios/ldlinux.c32" \
    iso/isolinux/
cat > iso/isolinux/isolinux.cfg <<'CFG'
SERIAL 0 115200
DEFAULT live
TIMEOUT 1
LABEL live
  KERNEL /boot/bzImage
  APPEND initrd=/boot/initrd console=ttyS0,115200 quiet
CFG

# UEFI: GRUB with its configuration built in, on a FAT image appended as partition 2.
cat > grub.cfg <<'CFG'
search --no-floppy --set=root --file /boot/bzImage
set timeout=0
linux /boot/bzImage console=ttyS0,115200 quiet
initrd /boot/initrd
boot
CFG
grub-mkstandalone -O x86_64-efi --locales= --fonts= --themes= \
    --modules="part_gpt part_msdos iso9660 fat search search_fs_file linux normal" \
    -o BOOTX64.EFI "boot/grub/grub.cfg=grub.cfg"
rm -f esp.img
mkfs.vfat -C -n EFIBOOT -i 12345678 esp.img 4096 >/dev/null
mmd -i esp.img ::/EFI ::/EFI/BOOT
mcopy -i esp.img BOOTX64.EFI ::/EFI/BOOT/

rm -f anchor.iso
SOURCE_DATE_EPOCH=1700000000 xorriso -as mkisofs -iso-level 3 -volid ANCHOR_LIVE \
    -full-iso9660-filenames -joliet -rational-rock \
    -eltorito-boot isolinux/isolinux.bin -eltorito-catalog isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table \
    -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
    -isohybrid-gpt-basdat -isohybrid-mbr "$payload/usr/lib/ISOLINUX/isohdpfx.bin" \
    -append_partition 2 0xef esp.img -output anchor.iso iso >/dev/null 2>&1

# `just bench-live` boots it itself, beside isoproof's images (benches/live-boot.sh).
[ "${ANCHOR_BUILD_ONLY:-}" = 1 ] && exit 0

code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
for firmware in bios uefi; do
    for media in cdrom disk; do
        args=(-nodefaults -machine q35,accel=tcg -m 512 -display none -monitor none
              -serial stdio -no-reboot)
        if [ "$firmware" = uefi ]; then
            cp "$vars" vars.fd
            args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
                   -drive if=pflash,format=raw,unit=1,file=vars.fd)
        fi
        if [ "$media" = cdrom ]; then
            args+=(-drive file=anchor.iso,media=cdrom,readonly=on,format=raw)
        else
            args+=(-drive file=anchor.iso,if=virtio,format=raw,readonly=on)
        fi
        start=$(date +%s%N)
        out=$(timeout 120 qemu-system-x86_64 "${args[@]}" 2>&1 | tr -d '\r' || true)
        end=$(date +%s%N)
        result=FAILED
        grep -q 'ANCHOR host=anchorhost' <<<"$out" && result=ok
        ms=$(( (end - start) / 1000000 ))
        printf 'anchor   %-4s %-5s %s %d.%02d s\n' "$firmware" "$media" "$result" \
            $(( ms / 1000 )) $(( ms % 1000 / 10 ))
    done
done
