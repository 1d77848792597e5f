# The installer as a live system, combined with a host written as NixOS users write it
# (nixos-host/configuration.nix with its hardware-configuration.nix). The image module's
# mkImageMediaOverride (60) replaces the host's whole file-system layout and swap list; the
# host's name (100) beats the installer's mkDefault; the installer turns SSH on, so the
# host's `lib.mkIf config.services.openssh.enable` firewall rule holds. The booted Linux
# must show exactly that.
{ modulesPath, ... }:
{
  imports = [
    ./nixos-host/configuration.nix
    "${modulesPath}/installer/cd-dvd/installation-cd-minimal.nix"
  ];
  isoImage.bootPayload = "linux";
  isoImage.payloadRoot = "../payload/root";
}
