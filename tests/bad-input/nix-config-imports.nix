# expect: config.extra is used where a list is needed where the module system cannot know it yet
{ config, ... }: { imports = config.extra; }
