# Edit this configuration file to define what should be installed on
# your system.  Help is available in the configuration.nix(5) man page
# and in the NixOS manual (accessible by running ‘nixos-help’).

{ config, lib, pkgs, ... }:

let
  # The owner's account, used twice below.
  owner = "alice";
in
{
  imports =
    [ # Include the results of the hardware scan.
      ./hardware-configuration.nix
    ];

  # Use the GRUB 2 boot loader.
  boot.loader.grub.enable = true;
  boot.kernelParams = [ "quiet" ];

  networking.hostName = "workstation"; # Define your hostname.

  # Open ports in the firewall for the SSH daemon, when it runs.
  networking.firewall.allowedTCPPorts = lib.mkIf config.services.openssh.enable [ 22 ];

  # Define a user account. Don't forget to set a password with ‘passwd’.
  users.users.${owner} = {
    isNormalUser = true;
    extraGroups = lib.mkMerge [
      [ "wheel" ]
      (lib.mkIf config.services.openssh.enable [ "ssh-users" ])
    ];
  };

  # List packages installed in system profile; the SSH file system client only where SSH
  # runs (a computation with `config`: the module system's fixpoint decides it).
  environment.systemPackages = with pkgs; [
    vim
    git
    (writeShellScript "greet" "echo hello from ${owner}")
  ] ++ lib.optional config.services.openssh.enable sshfs;
}
