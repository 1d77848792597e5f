{
  length = builtins.stringLength "héllo";
  sub = builtins.substring 1 3 "abcdef";
  subPast = builtins.substring 4 10 "abcdef";
  replace = builtins.replaceStrings [ "a" "b" ] [ "1" "22" ] "abcab";
  replaceEmpty = builtins.replaceStrings [ "" ] [ "-" ] "ab";
  sep = builtins.concatStringsSep ", " [ "a" "b" "c" ];
  toString = [ (toString 42) (toString true) (toString false) (toString null) (toString [ 1 "a" [ 2 ] ]) (toString 1.5) ];
  typeOf = map builtins.typeOf [ 1 1.0 "s" true null [ ] { } (x: x) ./. ];
  match = [ (builtins.match "a(b*)c" "abbc") (builtins.match "a(b*)c" "ax") (builtins.match "([a-z]+)-([0-9]+)" "foo-42") ];
  split = builtins.split "(,)" "a,b,c";
  splitPlain = builtins.split "," "a,b";
  hash = builtins.hashString "sha256" "hello";
  versions = [ (builtins.compareVersions "1.2.3" "1.10") (builtins.compareVersions "2.0" "2.0") (builtins.compareVersions "1.0pre1" "1.0") ];
  baseName = [ (baseNameOf "/a/b/c.nix") (baseNameOf "c") (dirOf "/a/b/c") (dirOf "c") ];
}
