# expect: syntax error
{ config = { a = 1 }; }
