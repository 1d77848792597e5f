[ 1 (-2) 3.5 1.0e3 "s" true false null http://example.org/x ]
