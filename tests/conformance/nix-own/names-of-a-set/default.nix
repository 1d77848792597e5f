{ config, lib, ... }:
{
  options = {
    users = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule {
        options.home = lib.mkOption { type = lib.types.str; default = "/home"; };
        options.admin = lib.mkOption { type = lib.types.bool; default = false; };
      });
      default = { };
    };
    homes = lib.mkOption { type = lib.types.attrsOf lib.types.str; default = { }; };
    admins = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
    userCount = lib.mkOption { type = lib.types.int; };
  };
  config = {
    users.alice = { admin = true; };
    users.bob = { home = "/srv/bob"; };
    homes = lib.mapAttrs' (n: u: lib.nameValuePair "home-${n}" u.home) config.users;
    admins = lib.attrNames (lib.filterAttrs (_: u: u.admin) config.users);
    userCount = builtins.length (builtins.attrNames config.users) + (if config ? users then 10 else 0);
  };
}
