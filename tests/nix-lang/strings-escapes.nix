[ "a\"b" "tab\there" "new\nline" "dollar \${x}" "back\\slash" "${"in"}terp" ]
