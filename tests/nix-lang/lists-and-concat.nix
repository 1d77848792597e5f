[ ([ 1 2 ] ++ [ 3 ]) (builtins.length [ 1 2 3 ]) (builtins.elemAt [ "a" "b" ] 1) (builtins.head [ 5 ]) (builtins.tail [ 1 2 3 ]) ]
