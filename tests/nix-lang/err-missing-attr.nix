let s = { alpha = 1; beta = 2; }; in s.alpah
