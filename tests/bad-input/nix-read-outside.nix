# expect: outside the scenario's folder
{ config.x = builtins.readFile /etc/hostname; }
