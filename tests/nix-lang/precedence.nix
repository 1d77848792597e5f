[ (!false && true) (1 + 2 == 3) ({ a = [ 1 ]; } // { b = 2; } == { a = [ 1 ]; b = 2; }) ([ 1 ] ++ [ 2 ] ++ [ 3 ]) (true || false && false) (false -> true -> false) ]
