{ config, lib, ... }:
{
  options = {
    users = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule ({ name, ... }: {
        options.name = lib.mkOption { type = lib.types.str; default = name; };
        options.home = lib.mkOption { type = lib.types.str; default = "/home/${name}"; };
        options.group = lib.mkOption { type = lib.types.str; default = "${name}-users"; };
      }));
      default = { };
    };
    homes = lib.mkOption { type = lib.types.listOf lib.types.str; };
  };
  config = {
    users.alice = { };
    users.bob = { home = "/srv/bob"; };
    homes = lib.mapAttrsToList (n: u: "${u.name}=${u.home}") config.users;
  };
}
