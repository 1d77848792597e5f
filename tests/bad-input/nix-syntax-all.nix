# expect: also: syntax error, unexpected end of file
{ a = 1
  b = [ 1 2 ;
