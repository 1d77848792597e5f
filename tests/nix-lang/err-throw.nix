builtins.throw "a message from throw"
