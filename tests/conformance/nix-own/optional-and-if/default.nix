{ config, lib, ... }:
let cfg = config.services.web; in
{
  options = {
    services.web.enable = lib.mkEnableOption "a web server";
    services.web.port = lib.mkOption { type = lib.types.port; default = 80; };
    firewall.allowedTCPPorts = lib.mkOption { type = lib.types.listOf lib.types.port; default = [ ]; };
    motd = lib.mkOption { type = lib.types.str; default = ""; };
    packages = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
  };
  config = {
    services.web.enable = true;
    services.web.port = 8080;
    firewall.allowedTCPPorts = lib.optional cfg.enable cfg.port ++ lib.optionals (!cfg.enable) [ 1 ];
    motd = if cfg.enable then "web on ${toString cfg.port}" else "no web";
    packages = [ "base" ] ++ lib.optional (cfg.port > 1024) "unprivileged";
  };
}
