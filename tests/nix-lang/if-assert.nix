[ (if 1 < 2 then "yes" else "no") (assert true; "asserted") (if [ 1 2 ] < [ 1 3 ] then "list less" else "no") ]
