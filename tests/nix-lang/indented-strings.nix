let x = "X"; in [
  ''
    first
      indented
    last
  ''
  ''one line''
  ''  keeps ''${literal} and ''' quote and ${x}
  ''
  ''
    tab''\tescape
  ''
]
